from namenode.cli import app

app(prog_name="dfs namenode")
