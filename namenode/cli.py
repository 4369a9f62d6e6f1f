"""`dfs namenode` / `python -m namenode`: run a NameNode process, or format / upgrade / check its database.

`dfs namenode [OPTIONS]` (no command) serves; `dfs namenode format`, `upgrade` and `check`
work on the metadata database and exit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from alembic.util import CommandError as AlembicError
from pydantic import ValidationError
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from client.protocol.errors import describe_validation_errors
from namenode import integrity
from namenode.config import NameNodeSettings
from namenode.db import schema
from server_common.cluster_secret import ClusterSecretError

app = typer.Typer(add_completion=False, help="Run a NameNode.")


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (0 picks a free one).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Directory for the embedded SQLite metadata.")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the metadata database.")] = None,
    port_file: Annotated[Path | None, typer.Option(help="Write the base URL here once ready.")] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve https with this certificate (PEM); needs --tls-key.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The private key of --tls-cert (PEM).")] = None,
    tls_ca: Annotated[
        Path | None, typer.Option(help="CA bundle to verify the servers this one calls (default: $DFS_CA_FILE).")
    ] = None,
    default_replication: Annotated[int | None, typer.Option(help="Replication of new files.")] = None,
    default_block_size: Annotated[int | None, typer.Option(help="Block size of new files (bytes).")] = None,
    max_block_size: Annotated[int | None, typer.Option(help="Largest block size a file may have (bytes).")] = None,
    heartbeat_interval: Annotated[float | None, typer.Option(help="Seconds between DataNode heartbeats.")] = None,
    stale_after: Annotated[float | None, typer.Option(help="Seconds of silence before a node is stale.")] = None,
    dead_after: Annotated[float | None, typer.Option(help="Seconds of silence before a node is dead.")] = None,
    replication_interval: Annotated[float | None, typer.Option(help="Seconds between monitor passes.")] = None,
    lease_soft_limit: Annotated[
        float | None, typer.Option(help="Seconds before another writer may recover a file.")
    ] = None,
    lease_hard_limit: Annotated[
        float | None, typer.Option(help="Seconds before a silent writer's file is recovered.")
    ] = None,
    replication_bandwidth: Annotated[
        float | None, typer.Option(help="Cluster-wide re-replication budget, MB/s (0: unlimited).")
    ] = None,
    scan_period: Annotated[
        float | None, typer.Option(help="Default seconds in which DataNodes verify every replica once.")
    ] = None,
    safemode_threshold: Annotated[
        float | None, typer.Option(help="Fraction of blocks reported before safe mode ends.")
    ] = None,
    safemode_extension: Annotated[
        float | None, typer.Option(help="Seconds safe mode lasts after the threshold is reached.")
    ] = None,
    webhdfs_proxy: Annotated[
        bool | None,
        typer.Option(
            "--webhdfs-proxy/--webhdfs-redirect",
            help="Serve WebHDFS data on the NameNode (for clients that cannot reach DataNodes) instead of redirecting.",
        ),
    ] = None,
    superuser: Annotated[
        str | None, typer.Option(help="The superuser (default: the user running the NameNode).")
    ] = None,
    supergroup: Annotated[str | None, typer.Option(help="Members of this group are superusers too.")] = None,
    user_groups: Annotated[
        str | None,
        typer.Option(help='Groups of users, overriding the OS groups: "alice=eng,ops;bob=eng".'),
    ] = None,
    permissions: Annotated[
        bool | None,
        typer.Option("--permissions/--no-permissions", help="Check file permissions (off: anyone may do anything)."),
    ] = None,
    cluster_secret_file: Annotated[
        Path | None,
        typer.Option(help="File holding the secret shared with the DataNodes (default: DATA_DIR/cluster.secret)."),
    ] = None,
    auth_mode: Annotated[
        str | None, typer.Option(help="simple: callers state their user; token: every request needs a token.")
    ] = None,
    block_access_tokens: Annotated[
        bool | None,
        typer.Option("--block-access-tokens/--no-block-access-tokens", help="Require block tokens on DataNodes."),
    ] = None,
    block_token_lifetime: Annotated[float | None, typer.Option(help="Seconds a block access token is valid.")] = None,
    block_key_rotation: Annotated[float | None, typer.Option(help="Seconds between block key rotations.")] = None,
    client_rate_limit: Annotated[
        float | None, typer.Option(help="Requests per second each client may make (0: no limit).")
    ] = None,
    client_rate_burst: Annotated[
        int | None, typer.Option(help="Requests a client may make at once beyond --client-rate-limit.")
    ] = None,
    max_request_bytes: Annotated[
        int | None, typer.Option(help="Largest request body of a client route (bytes).")
    ] = None,
    advertise_url: Annotated[
        str | None, typer.Option(help="URL others reach this NameNode at (default: the bound address).")
    ] = None,
    leader_lease: Annotated[
        float | None,
        typer.Option(help="Seconds a leader's lease lasts (NameNodes sharing a database; default 6)."),
    ] = None,
    log_json: Annotated[bool | None, typer.Option("--log-json/--log-console", help="Log format.")] = None,
) -> None:
    """Serve the namespace on HOST:PORT until interrupted (or run COMMAND on its database)."""
    from namenode.app import create_app
    from server_common.logging import configure_logging
    from server_common.serve import run_app
    from server_common.tls import start_tls

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "db_url": db,
        "port_file": port_file,
        "tls_cert_file": tls_cert,
        "tls_key_file": tls_key,
        "tls_ca_file": tls_ca,
        "default_replication": default_replication,
        "default_block_size": default_block_size,
        "max_block_size": max_block_size,
        "heartbeat_interval_s": heartbeat_interval,
        "stale_after_s": stale_after,
        "dead_after_s": dead_after,
        "replication_interval_s": replication_interval,
        "lease_soft_limit_s": lease_soft_limit,
        "lease_hard_limit_s": lease_hard_limit,
        "replication_bandwidth_mbps": replication_bandwidth,
        "scan_period_s": scan_period,
        "safemode_threshold": safemode_threshold,
        "safemode_extension_s": safemode_extension,
        "webhdfs_proxy": webhdfs_proxy,
        "superuser": superuser,
        "supergroup": supergroup,
        "user_groups": user_groups,
        "permissions_enabled": permissions,
        "cluster_secret_file": cluster_secret_file,
        "auth_mode": auth_mode,
        "block_access_tokens": block_access_tokens,
        "block_token_lifetime_s": block_token_lifetime,
        "block_key_rotation_s": block_key_rotation,
        "client_rate_limit": client_rate_limit,
        "client_rate_burst": client_rate_burst,
        "max_request_bytes": max_request_bytes,
        "advertise_url": advertise_url,
        "leader_lease_s": leader_lease,
        "log_json": log_json,
    }
    if ctx.invoked_subcommand is not None:
        if any(value is not None for value in overrides.values()):
            raise typer.BadParameter(
                f"server options do not go with a command: dfs namenode {ctx.invoked_subcommand} [OPTIONS]"
            )
        return
    try:
        settings = NameNodeSettings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise typer.BadParameter(describe_validation_errors(exc.errors())) from None
    try:
        settings.resolve_cluster_secret()  # made or checked now, so a bad file is one line, not a traceback
    except ClusterSecretError as exc:
        typer.echo(f"dfs namenode: {exc}", err=True)
        raise typer.Exit(1) from None
    if settings.db_url:
        with _database_errors("", settings) as engine:  # unreachable or malformed: one line, not a traceback
            engine.connect().close()
    served_tls = start_tls(settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file, "namenode")
    configure_logging("namenode", json=settings.log_json, level=settings.log_level)
    run_app(
        lambda port: create_app(settings.model_copy(update={"port": port})),  # its own URL needs the bound port
        host=settings.host,
        port=settings.port,
        port_file=settings.port_file,
        on_ready=lambda url: print(f"NameNode ready at {url}", flush=True),
        ssl_context=served_tls,
    )


# --- the metadata database -------------------------------------------------------------------------

DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="Directory for the embedded SQLite metadata.")]
DbOption = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the metadata database.")]


@app.command("format")
def format_command(
    data_dir: DataDirOption = None,
    db: DbOption = None,
    cluster_id: Annotated[
        str | None, typer.Option(help="Cluster id of the new namespace (default: CID-<random uuid>).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Erase a formatted database (every table) and format it anew.")
    ] = False,
) -> None:
    """Create the schema and a new, empty namespace in an empty database; print its cluster id."""
    if cluster_id is not None and not _valid_cluster_id(cluster_id):
        raise typer.BadParameter("1 to 64 printable characters, no spaces", param_hint="--cluster-id")
    settings = _database_settings(data_dir, db, create=True)
    with _database_errors("format", settings) as engine:
        try:
            new_id = schema.format_database(
                engine,
                cluster_id=cluster_id,
                force=force,
                owner=settings.superuser or None,
                group=settings.supergroup,
            )
        except schema.AlreadyFormattedError as exc:
            _fail("format", f"{_where(settings)} already holds namespace {exc.cluster_id}; --force erases it")
    typer.echo(new_id)


@app.command("upgrade")
def upgrade_command(data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """Bring the schema of an existing database to this version's newest revision."""
    settings = _database_settings(data_dir, db, create=False)
    head = schema.head_revision()
    with _database_errors("upgrade", settings) as engine:
        _require_namespace("upgrade", settings, engine)
        before, after = schema.upgrade(engine)
    if before == after:
        typer.echo(f"schema already at head ({head})")
    else:
        typer.echo(f"upgraded schema from {before} to {after}")


@app.command("check")
def check_command(data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """Check the metadata's integrity: one tree, no orphan inodes, block lists that add up, leases
    exactly on open files. Read-only (one snapshot), so it may run beside live NameNodes; exit
    status 1 lists each violation found."""
    settings = _database_settings(data_dir, db, create=False)
    with _database_errors("check", settings) as engine:
        _require_namespace("check", settings, engine)
        report = integrity.check_database(engine)
    for violation in report.violations:
        typer.echo(violation)
    verdict = "consistent" if report.consistent else f"{len(report.violations)} violations"
    typer.echo(f"{_where(settings)}: {verdict} ({report.inodes} inodes, {report.files} files, {report.blocks} blocks)")
    if not report.consistent:
        raise typer.Exit(1)


def _require_namespace(command: str, settings: NameNodeSettings, engine: Engine) -> None:
    """Refuse (one line) a database that holds no namespace, without creating a mistyped SQLite file."""
    sqlite_file = engine.url.database if engine.dialect.name == "sqlite" else None
    if sqlite_file and sqlite_file != ":memory:" and not Path(sqlite_file).exists():
        # Connecting would create an empty file: a mistyped path must not look like an empty database.
        _fail(command, f"no metadata database at {sqlite_file}")
    if schema.current_revision(engine) is None:
        _fail(command, f"{_where(settings)} holds no namespace; dfs namenode format creates one")


def _valid_cluster_id(cluster_id: str) -> bool:
    return 0 < len(cluster_id) <= 64 and cluster_id.isprintable() and not any(ch.isspace() for ch in cluster_id)


def _database_settings(data_dir: Path | None, db: str | None, *, create: bool) -> NameNodeSettings:
    """The settings the server would use (flags, then DFS_NAMENODE_* variables, then defaults)."""
    overrides: dict[str, Any] = {"data_dir": data_dir, "db_url": db}
    try:
        settings = NameNodeSettings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise typer.BadParameter(describe_validation_errors(exc.errors())) from None
    if not settings.db_url and create:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _fail("format", f"cannot make {settings.data_dir}: {exc.strerror}")
    return settings


def _where(settings: NameNodeSettings) -> str:
    return str(make_url(settings.database_url()).render_as_string(hide_password=True))


@contextlib.contextmanager
def _database_errors(command: str, settings: NameNodeSettings) -> Iterator[Engine]:
    """An engine for the configured database; any failure to use it is one line and exit status 1."""
    try:  # the URL is not echoed back: a malformed one may still carry a password
        engine = create_engine(settings.database_url(), poolclass=NullPool)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        _fail(command, f"bad database URL (--db / DFS_NAMENODE_DB_URL): {_first_line(exc)}")
    try:
        yield engine
    except (SQLAlchemyError, AlembicError, OSError) as exc:
        detail = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        _fail(command, f"cannot use {_where(settings)}: {_first_line(detail)}")
    finally:
        engine.dispose()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _fail(command: str, message: str) -> NoReturn:
    typer.echo(f"{' '.join(['dfs namenode', command]).strip()}: {message}", err=True)
    raise typer.Exit(1)
