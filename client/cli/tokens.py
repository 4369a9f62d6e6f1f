"""`dfs token create | list | revoke`: user (delegation) tokens for token mode (docs/security.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from client.cli.context import get_context
from client.cli.output import print_json, timestamp
from client.protocol.security import TokenInfo

app = typer.Typer(help="Issue, list and revoke user tokens.", no_args_is_help=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

SecretFileOption = Annotated[
    Path | None,
    typer.Option(
        envvar="DFS_CLUSTER_SECRET_FILE",
        help="Act as the superuser by signing with the cluster secret (to issue the first tokens).",
    ),
]


def parse_ttl(text: str) -> float:
    """'90', '90s', '30m', '12h' or '7d' as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r}: give a positive duration such as 3600, 30m, 12h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _describe(info: TokenInfo) -> str:
    state = "revoked" if info.revoked else f"expires {timestamp(info.expires_ms)}"
    note = f"  {info.description}" if info.description else ""
    return f"{info.token_id}  {info.user:<12} issued by {info.issued_by:<12} {state}{note}"


@app.command("create")
def create(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Whom the token is for (default: yourself).")] = None,
    ttl: Annotated[str | None, typer.Option(help="Lifetime, e.g. 3600, 30m, 1h, 7d (default: the NameNode's).")] = None,
    description: Annotated[str, typer.Option(help="A note shown by `dfs token list`.")] = "",
    secret_file: SecretFileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the token and its details as JSON.")] = False,
) -> None:
    """Issue a token and print it (export it as DFS_TOKEN)."""
    ttl_s = None if ttl is None else parse_ttl(ttl)
    with get_context(ctx).client(secret_file=secret_file) as fs:
        issued = fs.create_token(user, ttl_s=ttl_s, description=description)
    if as_json:
        print_json(issued)
    else:
        print(issued.token)


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    secret_file: SecretFileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Unexpired tokens: your own, or everyone's for the superuser."""
    with get_context(ctx).client(secret_file=secret_file) as fs:
        tokens = fs.list_tokens()
    if as_json:
        print_json(tokens)
        return
    for info in tokens:
        print(_describe(info))


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="TOKEN_ID", help="The id `dfs token list` shows.")],
    secret_file: SecretFileOption = None,
) -> None:
    """Revoke a token: every NameNode refuses it within a few seconds."""
    with get_context(ctx).client(secret_file=secret_file) as fs:
        info = fs.revoke_token(token_id)
    print(_describe(info))
