"""The cluster secret: where a server finds it, and how the NameNode makes one on first start.

The NameNode and every DataNode share one secret (docs/security.md). It authenticates the
DataNode <-> NameNode conversation and keys block access tokens and user tokens, so it lives in
a file only the service account can read (mode 0600), or in an environment variable for
containers.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from client.protocol.security import MIN_SECRET_LENGTH, generate_secret

SECRET_FILE_NAME = "cluster.secret"


class ClusterSecretError(RuntimeError):
    """The secret is missing, unreadable, too short, or readable by other users."""


def read_secret_file(path: Path) -> str:
    """The secret stored in `path` (surrounding whitespace ignored)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise ClusterSecretError(f"cannot read the cluster secret file {path}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ClusterSecretError(f"the cluster secret file {path} is accessible by other users: chmod 600 {path}")
    return check_secret(text, str(path))


def check_secret(text: str, where: str) -> str:
    if len(text) < MIN_SECRET_LENGTH:
        raise ClusterSecretError(f"the cluster secret in {where} is shorter than {MIN_SECRET_LENGTH} characters")
    return text


def write_new_secret(path: Path) -> str:
    """Create `path` holding a fresh secret, readable by its owner only; never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = generate_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret


def load_secret(value: str, path: Path | None, *, create_at: Path | None = None) -> str | None:
    """The configured secret: an explicit value wins, then `path`; if neither is set and
    `create_at` is given, the secret stored there, created on first use. None: not configured."""
    if value:
        return check_secret(value, "the configured value")
    if path is not None:
        return read_secret_file(path)
    if create_at is not None:
        if create_at.exists():
            return read_secret_file(create_at)
        try:
            return write_new_secret(create_at)
        except FileExistsError:  # another process made it between the check and the create
            return read_secret_file(create_at)
    return None
