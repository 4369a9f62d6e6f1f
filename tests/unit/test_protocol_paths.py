"""Namespace path rules: validation, the path algebra and shell-style normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.protocol import paths
from client.protocol.errors import InvalidPathError

# --- strategies ------------------------------------------------------------------------------

#: Any character a valid name may hold: no '/', no NUL, no lone surrogates (not encodable).
NAME_CHARS = st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"])

names = st.text(NAME_CHARS, min_size=1, max_size=24).filter(
    lambda name: name not in (".", "..") and len(name.encode()) <= paths.MAX_NAME_BYTES
)
name_lists = st.lists(names, max_size=8)


def path_of(components: list[str]) -> str:
    """The absolute path whose components are `components` (the root for none)."""
    return "/" + "/".join(components)


valid_paths = name_lists.map(path_of)


def assert_invalid(path: str, match: str | None = None) -> None:
    with pytest.raises(InvalidPathError, match=match):
        paths.validate_path(path)


# --- validate_path: accepted ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/a", "/a/b/c", "/with space", "/ünïcødé/文件", "/.hidden", "/a..b", "/...", "/-", "/a\\b"],
)
def test_validate_path_accepts_absolute_normalised_paths(path: str) -> None:
    assert paths.validate_path(path) == path


@given(valid_paths)
def test_validate_path_returns_valid_paths_unchanged(path: str) -> None:
    assert paths.validate_path(path) == path
    assert paths.validate_path(paths.validate_path(path)) == path


def test_name_of_exactly_255_bytes_is_accepted() -> None:
    assert paths.validate_path("/" + "a" * 255) == "/" + "a" * 255
    # 127 two-byte characters: 254 bytes.
    assert paths.validate_path("/" + "é" * 127) == "/" + "é" * 127


def test_path_of_exactly_4096_bytes_is_accepted() -> None:
    path = ("/" + "a" * 255) * 16
    assert len(path.encode()) == paths.MAX_PATH_BYTES
    assert paths.validate_path(path) == path


def test_path_of_exactly_1000_components_is_accepted() -> None:
    path = "/a" * paths.MAX_DEPTH
    assert paths.validate_path(path) == path


# --- validate_path: rejected ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "a", "a/b", "./a", "../a", " /a", "~/a"])
def test_relative_paths_are_rejected(path: str) -> None:
    assert_invalid(path, match="absolute")


@pytest.mark.parametrize("path", [None, 42, b"/a"])
def test_non_string_paths_are_rejected(path: object) -> None:
    with pytest.raises(InvalidPathError):
        paths.validate_path(path)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["//", "//a", "/a//b", "/a/", "/a/b/", "///"])
def test_empty_components_are_rejected(path: str) -> None:
    assert_invalid(path, match="empty component")


@pytest.mark.parametrize("path", ["/.", "/..", "/a/.", "/a/..", "/./a", "/../a", "/a/./b", "/a/../b"])
def test_dot_components_are_rejected(path: str) -> None:
    assert_invalid(path, match="must not contain")


@pytest.mark.parametrize("path", ["/\x00", "/a\x00", "/a/\x00/b", "/a\x00b"])
def test_nul_characters_are_rejected(path: str) -> None:
    with pytest.raises(InvalidPathError, match="NUL") as excinfo:
        paths.validate_path(path)
    assert "\x00" not in str(excinfo.value), "the error must not echo a raw NUL"


def test_name_of_256_bytes_is_rejected() -> None:
    assert_invalid("/" + "a" * 256, match="255")
    assert_invalid("/ok/" + "a" * 256 + "/ok", match="255")


def test_name_length_counts_utf8_bytes_not_characters() -> None:
    name = "é" * 128  # 128 characters but 256 bytes
    assert_invalid("/" + name, match="255")


def test_path_over_4096_bytes_is_rejected() -> None:
    path = ("/" + "a" * 255) * 16 + "/b"
    assert_invalid(path, match="4096")


def test_path_length_counts_utf8_bytes_not_characters() -> None:
    path = ("/" + "é" * 100) * 21  # 2121 characters, 4221 bytes; every name is 200 bytes
    assert len(path) < paths.MAX_PATH_BYTES
    assert_invalid(path, match="4096")


def test_path_deeper_than_1000_components_is_rejected() -> None:
    assert_invalid("/a" * (paths.MAX_DEPTH + 1), match="deeper")


@given(name_lists.filter(bool), st.data())
def test_any_empty_component_is_rejected(components: list[str], data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(components)))
    assert_invalid(path_of([*components[:position], "", *components[position:]]))


@given(name_lists, st.data(), st.sampled_from([".", ".."]))
def test_any_dot_component_is_rejected(components: list[str], data: st.DataObject, dot: str) -> None:
    position = data.draw(st.integers(0, len(components)))
    assert_invalid(path_of([*components[:position], dot, *components[position:]]))


@given(valid_paths, st.data())
def test_a_nul_anywhere_after_the_slash_is_rejected(path: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(1, len(path)))
    assert_invalid(path[:position] + "\x00" + path[position:])


@given(valid_paths.filter(lambda p: p != "/"))
def test_valid_path_with_trailing_slash_or_without_leading_slash_is_rejected(path: str) -> None:
    assert_invalid(path + "/")
    assert_invalid(path[1:])


# --- validate_name ----------------------------------------------------------------------------


@given(names)
def test_validate_name_accepts_valid_names(name: str) -> None:
    assert paths.validate_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/", "a\x00", "\x00", "x" * 256])
def test_validate_name_rejects_bad_names(name: str) -> None:
    with pytest.raises(InvalidPathError):
        paths.validate_name(name)


# --- split / parent / basename / join / is_ancestor -------------------------------------------


def test_root_algebra() -> None:
    assert paths.split("/") == []
    assert paths.parent("/") == "/"
    assert paths.basename("/") == ""
    assert paths.join("/", "a") == "/a"


@pytest.mark.parametrize(
    ("path", "parent", "basename"),
    [("/a", "/", "a"), ("/a/b", "/a", "b"), ("/a/b/c", "/a/b", "c"), ("/x y/z.txt", "/x y", "z.txt")],
)
def test_parent_and_basename_examples(path: str, parent: str, basename: str) -> None:
    assert paths.parent(path) == parent
    assert paths.basename(path) == basename


@given(name_lists)
def test_split_returns_the_components(components: list[str]) -> None:
    assert paths.split(path_of(components)) == components


@given(name_lists)
def test_joining_components_from_the_root_builds_the_path(components: list[str]) -> None:
    built = paths.ROOT
    for name in components:
        built = paths.join(built, name)
        assert paths.validate_path(built) == built
    assert built == path_of(components)


@given(valid_paths, names)
def test_parent_and_basename_undo_join(directory: str, name: str) -> None:
    child = paths.join(directory, name)
    assert paths.parent(child) == directory
    assert paths.basename(child) == name
    assert paths.split(child) == [*paths.split(directory), name]


@given(valid_paths.filter(lambda p: p != "/"))
def test_join_of_parent_and_basename_is_the_path(path: str) -> None:
    assert paths.join(paths.parent(path), paths.basename(path)) == path
    assert paths.split(paths.parent(path)) == paths.split(path)[:-1]


@given(name_lists)
def test_every_prefix_is_an_ancestor(components: list[str]) -> None:
    path = path_of(components)
    for depth in range(len(components) + 1):
        assert paths.is_ancestor(path_of(components[:depth]), path)


@given(valid_paths, names)
def test_a_child_is_not_an_ancestor_of_its_parent(directory: str, name: str) -> None:
    child = paths.join(directory, name)
    assert paths.is_ancestor(directory, child)
    assert not paths.is_ancestor(child, directory)


@given(valid_paths, names, names)
def test_a_sibling_sharing_a_name_prefix_is_not_an_ancestor(directory: str, name: str, suffix: str) -> None:
    """`/a/b` is not an ancestor of `/a/bc` even though one string starts the other."""
    short = paths.join(directory, name)
    longer = paths.join(directory, name + suffix)
    assert not paths.is_ancestor(short, longer)
    assert not paths.is_ancestor(short, paths.join(longer, "child"))


def test_is_ancestor_examples() -> None:
    assert paths.is_ancestor("/", "/")
    assert paths.is_ancestor("/", "/a/b")
    assert paths.is_ancestor("/a", "/a")
    assert paths.is_ancestor("/a", "/a/b/c")
    assert not paths.is_ancestor("/a", "/ab")
    assert not paths.is_ancestor("/a/b", "/a")
    assert not paths.is_ancestor("/a/b", "/a/c")


# --- normalize_user_path ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "cwd", "expected"),
    [
        ("/a/b", "/", "/a/b"),
        ("a/b", "/", "/a/b"),
        ("b", "/a", "/a/b"),
        ("", "/a", "/a"),
        (".", "/a", "/a"),
        ("..", "/a/b", "/a"),
        ("../c", "/a/b", "/a/c"),
        ("..", "/", "/"),
        ("/../../a", "/x", "/a"),
        ("//a///b//", "/", "/a/b"),
        ("./a/./b/.", "/", "/a/b"),
        ("a/../../b", "/x/y", "/x/b"),
        ("/", "/a/b", "/"),
    ],
)
def test_normalize_user_path_examples(typed: str, cwd: str, expected: str) -> None:
    assert paths.normalize_user_path(typed, cwd) == expected


@given(valid_paths, valid_paths)
def test_normalize_user_path_leaves_a_valid_absolute_path_alone(path: str, cwd: str) -> None:
    assert paths.normalize_user_path(path) == path
    assert paths.normalize_user_path(path, cwd) == path


@given(valid_paths, name_lists.filter(bool))
def test_relative_paths_are_taken_against_cwd(cwd: str, components: list[str]) -> None:
    expected = paths.split(cwd) + components
    assert paths.normalize_user_path("/".join(components), cwd) == path_of(expected)


@given(name_lists, st.data())
def test_noise_segments_normalise_away(components: list[str], data: st.DataObject) -> None:
    """Inserting '', '.', 'x/..' segments (and a trailing '/') anywhere changes nothing."""
    typed: list[str] = []
    for name in components:
        noise = data.draw(st.lists(st.sampled_from(["", ".", "junk/.."]), max_size=3))
        typed.extend(noise)
        typed.append(name)
    trailing = data.draw(st.sampled_from(["", "/", "/.", "//"]))
    assert paths.normalize_user_path("/" + "/".join(typed) + trailing) == path_of(components)


@given(valid_paths)
def test_normalize_user_path_is_idempotent(path: str) -> None:
    once = paths.normalize_user_path(path + "/./x/..")
    assert once == path
    assert paths.normalize_user_path(once) == once


@pytest.mark.parametrize("typed", ["a\x00b", "/a/\x00", "x" * 256, "/" + "a/" * 1001])
def test_normalize_user_path_still_validates_the_result(typed: str) -> None:
    with pytest.raises(InvalidPathError):
        paths.normalize_user_path(typed)


@given(valid_paths, st.integers(1, 5))
def test_dot_dots_above_root_stop_at_the_root(path: str, extra: int) -> None:
    ups = "/".join([".."] * (len(paths.split(path)) + extra))
    assert paths.normalize_user_path(ups, path) == "/"
    assert paths.normalize_user_path("..", path) == paths.parent(path)
