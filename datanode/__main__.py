from datanode.cli import app

app(prog_name="dfs datanode")
