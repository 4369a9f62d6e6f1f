"""Namespace path rules, shared by every component.

The NameNode only accepts absolute, normalised paths: the rules live here so the
SDK can reject a bad path before a round trip and the server can name the exact
problem when one arrives anyway.
"""

from __future__ import annotations

from client.protocol.errors import InvalidPathError

ROOT = "/"
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
MAX_DEPTH = 1000
#: What an API document says a path looks like (absolute, no empty components, no NUL). Necessary,
#: not sufficient: `validate_path` also refuses '.' and '..' components and over-long names.
PATH_PATTERN = r"^/([^/\x00]+(/[^/\x00]+)*)?$"
#: The JSON schema of a path in API documents. A path has at most as many characters as bytes; the
#: server's own bound on a parameter may be looser, so a longer path gets INVALID_PATH naming the limit.
PATH_JSON_SCHEMA: dict[str, str | int] = {"pattern": PATH_PATTERN, "maxLength": MAX_PATH_BYTES}


def validate_path(path: str) -> str:
    """Return `path` unchanged if it is absolute and normalised, else raise InvalidPathError.

    Rejected: relative paths, empty components (``//`` or a trailing ``/``), ``.`` and
    ``..`` components, NUL characters, names over 255 UTF-8 bytes, paths over 4096 bytes.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidPathError(f"path must be absolute (start with '/'): {path!r}", path=str(path))
    if "\x00" in path:
        raise InvalidPathError("path must not contain NUL characters", path=path.replace("\x00", "\\0"))
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidPathError(f"path is longer than {MAX_PATH_BYTES} bytes", path=path[:64] + "...")
    if path == ROOT:
        return path
    components = path[1:].split("/")
    if len(components) > MAX_DEPTH:
        raise InvalidPathError(f"path is deeper than {MAX_DEPTH} components", path=path[:64] + "...")
    for name in components:
        _check_name(name, path)
    return path


def _check_name(name: str, path: str) -> None:
    if name == "":
        raise InvalidPathError("path has an empty component ('//' or a trailing '/')", path=path)
    if name in (".", ".."):
        raise InvalidPathError(f"path must not contain '{name}' components", path=path)
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidPathError(f"a path component is longer than {MAX_NAME_BYTES} bytes", path=path)


def validate_name(name: str) -> str:
    """Validate a single directory-entry name (no slashes)."""
    if "/" in name:
        raise InvalidPathError("a name must not contain '/'", path=name)
    _check_name(name, name)
    if "\x00" in name:
        raise InvalidPathError("a name must not contain NUL characters", path=name.replace("\x00", "\\0"))
    return name


def split(path: str) -> list[str]:
    """Components of a validated path; the root has none."""
    return [] if path == ROOT else path[1:].split("/")


def parent(path: str) -> str:
    """Parent of a validated path; the root is its own parent."""
    if path == ROOT:
        return ROOT
    head = path.rsplit("/", 1)[0]
    return head or ROOT


def basename(path: str) -> str:
    """Last component of a validated path ('' for the root)."""
    return "" if path == ROOT else path.rsplit("/", 1)[1]


def join(directory: str, name: str) -> str:
    """Join a validated directory path and one name."""
    return f"/{name}" if directory == ROOT else f"{directory}/{name}"


def is_ancestor(ancestor: str, path: str) -> bool:
    """True if `ancestor` is `path` or one of its ancestors (both validated)."""
    if ancestor == ROOT:
        return True
    return path == ancestor or path.startswith(ancestor + "/")


def normalize_user_path(path: str, cwd: str = ROOT) -> str:
    """Turn what a person typed into an absolute normalised path (for the shell, not the wire).

    Relative paths are taken against `cwd`, repeated and trailing slashes are dropped and
    ``.``/``..`` are resolved lexically, as ``hdfs dfs`` does. The result is then validated.
    """
    if not path.startswith("/"):
        path = join(cwd, path) if path else cwd
    stack: list[str] = []
    for name in path.split("/"):
        if name in ("", "."):
            continue
        if name == "..":
            if stack:
                stack.pop()
            continue
        stack.append(name)
    return validate_path("/" + "/".join(stack))
