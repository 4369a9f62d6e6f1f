"""`dfs chmod` modes: octal and symbolic, checked against GNU chmod on real files."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.cli.modes import parse_mode


def test_octal_modes_replace_the_bits() -> None:
    assert parse_mode("755")(0o1644, False) == 0o755
    assert parse_mode("1777")(0o700, True) == 0o1777
    assert parse_mode("0")(0o777, False) == 0


def test_symbolic_modes() -> None:
    assert parse_mode("u+x,go-w")(0o666, False) == 0o744
    assert parse_mode("a=rX")(0o640, True) == 0o555
    assert parse_mode("a=rX")(0o640, False) == 0o444
    assert parse_mode("a+X")(0o740, False) == 0o751  # a file with an x bit gets X
    assert parse_mode("+t")(0o777, True) == 0o1777
    assert parse_mode("u+t")(0o777, True) == 0o777  # the sticky bit goes with "other"
    assert parse_mode("o=rx")(0o1777, True) == 0o775
    assert parse_mode("+w")(0o444, False) == 0o666  # no "who": all (no umask, as Hadoop)
    assert parse_mode("u-x+w,g=")(0o755, False) == 0o605


@pytest.mark.parametrize("text", ["rwx", "", "u+z", "8", "12345", "u+x,", "uu", "+r,,g-w", "u=x g=r"])
def test_malformed_modes_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="octal mode such as 755 or a symbolic one"):
        parse_mode(text)


CLAUSE = st.builds(
    lambda who, actions: who + "".join(actions),
    st.text("ugoa", min_size=1, max_size=3),
    st.lists(
        st.builds(lambda op, perms: op + perms, st.sampled_from("+-="), st.text("rwxXt", max_size=4)),
        min_size=1,
        max_size=2,
    ),
)


@pytest.mark.skipif(shutil.which("chmod") is None, reason="needs chmod(1)")
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clauses=st.lists(CLAUSE, min_size=1, max_size=3), mode=st.integers(0, 0o1777), is_dir=st.booleans())
def test_symbolic_modes_agree_with_gnu_chmod(tmp_path: Path, clauses: list[str], mode: int, is_dir: bool) -> None:
    spec = ",".join(clauses)  # an explicit "who" in every clause: GNU applies its umask otherwise
    target = tmp_path / ("d" if is_dir else "f")
    if is_dir:
        target.mkdir(exist_ok=True)
    else:
        target.touch()
    target.chmod(mode)
    subprocess.run(["chmod", spec, str(target)], check=True)
    assert parse_mode(spec)(mode, is_dir) == stat.S_IMODE(target.stat().st_mode)
