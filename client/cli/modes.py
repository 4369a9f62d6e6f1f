"""`dfs chmod` modes: octal (755, 1777) or symbolic (u+x,go-w, a=rX, +t), as chmod(1) reads them.

Symbolic clauses are ``[ugoa]*([+-=][rwxXt]*)+`` separated by commas; no "who" means all
(without the umask GNU chmod applies there, as Hadoop's chmod does); ``X`` is x for
directories and for files that already have an x bit; ``t`` is the sticky bit, set through
``o`` or ``a`` (or no "who").
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["ModeChange", "parse_mode"]

#: new mode from (current mode, is a directory)
ModeChange = Callable[[int, bool], int]

STICKY = 0o1000
_CLASS_BITS = {"u": 0o700, "g": 0o070, "o": 0o007}
_PERM_BITS = {"r": 0o444, "w": 0o222, "x": 0o111}
_CLAUSE = re.compile(r"([ugoa]*)((?:[-+=][rwxXt]*)+)")
_ACTION = re.compile(r"([-+=])([rwxXt]*)")
USAGE = "expected an octal mode such as 755 or a symbolic one such as u+x,go-w"


def parse_mode(text: str) -> ModeChange:
    """The change `text` describes; ValueError (saying what is expected) if it is neither form."""
    if re.fullmatch(r"[0-7]{1,4}", text):
        bits = int(text, 8)
        return lambda _mode, _is_dir: bits
    clauses = [_CLAUSE.fullmatch(clause) for clause in text.split(",")]
    if not text or any(match is None for match in clauses):
        raise ValueError(f"{text!r}: {USAGE}")
    steps = [(match.group(1), match.group(2)) for match in clauses if match is not None]

    def change(mode: int, is_dir: bool) -> int:
        for who, actions in steps:
            for op, perms in _ACTION.findall(actions):
                mode = _apply(mode, is_dir, who, op, perms)
        return mode

    return change


def _apply(mode: int, is_dir: bool, who: str, op: str, perms: str) -> int:
    classes = 0
    for name in who.replace("a", "ugo") or "ugo":
        classes |= _CLASS_BITS[name]
    bits = 0
    for perm in perms:
        if perm == "X":
            if is_dir or mode & 0o111:
                bits |= _PERM_BITS["x"]
        elif perm != "t":
            bits |= _PERM_BITS[perm]
    bits &= classes
    sticky_applies = not who or "o" in who or "a" in who
    if "t" in perms and sticky_applies:
        bits |= STICKY
    if op == "+":
        return mode | bits
    if op == "-":
        return mode & ~bits
    cleared = classes | (STICKY if sticky_applies and "o" in (who.replace("a", "ugo") or "ugo") else 0)
    return (mode & ~cleared) | bits
