"""The NameNode's permission checker (HDFS's FSPermissionChecker rules) and group mapping, as pure logic."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.protocol.errors import DfsNotADirectoryError, DfsPermissionError
from namenode.permissions import (
    Caller,
    FsAction,
    GroupMapping,
    PermissionChecker,
    Permissions,
    SubtreeDirectory,
    mode_string,
    os_groups,
    parse_static_mapping,
)


@dataclass
class Node:
    owner: str
    group: str
    mode: int
    is_dir: bool = True


ROOT = Node("hdfs", "supergroup", 0o755)
ALICE = PermissionChecker(Caller("alice", frozenset({"eng"})))
BOB = PermissionChecker(Caller("bob", frozenset({"ops"})))
SUPER = PermissionChecker(Caller("hdfs", frozenset(), is_superuser=True))


def refused(call: object, *args: object, **kwargs: object) -> str:
    assert callable(call)
    with pytest.raises(DfsPermissionError) as caught:
        call(*args, **kwargs)
    return caught.value.message


def test_refusals_read_as_hadoops() -> None:
    message = refused(ALICE.check_access, Node("bob", "supergroup", 0o755), "/dir", FsAction.WRITE)
    assert message == 'Permission denied: user=alice, access=WRITE, inode="/dir":bob:supergroup:drwxr-xr-x'
    sticky = refused(ALICE.check_sticky, Node("root", "g", 0o1777), "/tmp", Node("bob", "g", 0o644, False), "/tmp/f")
    assert sticky == (
        'Permission denied by sticky bit: user=alice, path="/tmp/f":bob:g:-rw-r--r--, parent="/tmp":root:g:drwxrwxrwt'
    )
    assert (
        refused(ALICE.check_owner, Node("bob", "g", 0o777), "/f")
        == "Permission denied. user=alice is not the owner of inode=/f"
    )
    assert refused(ALICE.check_superuser) == "Access denied for user alice. Superuser privilege is required"


def test_mode_strings_and_actions() -> None:
    assert mode_string(0o1777, True) == "drwxrwxrwt"
    assert mode_string(0o1776, True) == "drwxrwxrwT"
    assert mode_string(0o4640, False) == "-rw-r-----"  # HDFS has no setuid: not shown
    assert FsAction.from_symbolic("r-x") is FsAction.READ_EXECUTE
    assert FsAction.from_symbolic("---") is FsAction.NONE
    assert FsAction.ALL.implies(FsAction.WRITE) and not FsAction.READ_EXECUTE.implies(FsAction.WRITE)


def test_the_owner_class_decides_for_the_owner_without_falling_through() -> None:
    # Owner bits --- but others rwx: the owner is refused (POSIX and HDFS pick one class).
    locked_out = Node("alice", "eng", 0o077)
    refused(ALICE.check_access, locked_out, "/f", FsAction.READ)
    refused(
        PermissionChecker(Caller("carol", frozenset({"eng"}))).check_access,
        Node("x", "eng", 0o707),
        "/f",
        FsAction.READ,
    )
    PermissionChecker(Caller("carol")).check_access(Node("x", "eng", 0o707), "/f", FsAction.ALL)
    ALICE.check_access(Node("bob", "eng", 0o040), "/f", FsAction.READ)  # through the group


@given(
    mode=st.integers(0, 0o777),
    noise=st.integers(0, 0o777),
    role=st.sampled_from(["owner", "group", "other"]),
    access=st.sampled_from(list(FsAction)),
)
def test_only_the_callers_class_matters(mode: int, noise: int, role: str, access: FsAction) -> None:
    shift = {"owner": 6, "group": 3, "other": 0}[role]
    kept = 0o7 << shift
    owner = "alice" if role == "owner" else "zed"
    group = "eng" if role == "group" else "nobody"
    first = Node(owner, group, mode)
    second = Node(owner, group, (mode & kept) | (noise & ~kept))  # other classes' bits changed
    assert ALICE.allows(first, access) == ALICE.allows(second, access)
    assert ALICE.allows(first, access) == FsAction((mode >> shift) & 0o7).implies(access)


def test_traversal_needs_x_on_every_ancestor_even_for_a_missing_path() -> None:
    private = Node("bob", "ops", 0o700)
    # /private exists, /private/missing does not: refused, not "not found" (nothing leaks).
    message = refused(ALICE.check_path, "/private/missing", [ROOT, private])
    assert 'access=EXECUTE, inode="/private"' in message
    ALICE.check_path("/private", [ROOT, private])  # stat of the directory itself: traversal of / only
    BOB.check_path("/private/missing", [ROOT, private])


def test_a_file_in_the_middle_of_a_path_is_not_a_directory() -> None:
    with pytest.raises(DfsNotADirectoryError, match="/f is not a directory"):
        ALICE.check_path("/f/x", [ROOT, Node("alice", "eng", 0o644, is_dir=False)])


def test_ancestor_access_is_checked_on_the_deepest_existing_ancestor() -> None:
    shared = Node("bob", "eng", 0o775)
    ALICE.check_path("/shared/new/deeper", [ROOT, shared], ancestor=FsAction.WRITE)  # group may write
    message = refused(BOB.check_path, "/new", [ROOT], ancestor=FsAction.WRITE)
    assert 'inode="/":hdfs:supergroup' in message
    # The path itself existing does not make it its own ancestor.
    refused(ALICE.check_path, "/d", [ROOT, Node("alice", "eng", 0o777)], ancestor=FsAction.WRITE)


def test_parent_access_and_the_sticky_bit() -> None:
    tmp = Node("hdfs", "supergroup", 0o1777)
    theirs, mine = Node("bob", "ops", 0o644, False), Node("alice", "eng", 0o644, False)
    ALICE.check_path("/tmp/mine", [ROOT, tmp, mine], parent=FsAction.WRITE)
    assert "sticky bit" in refused(ALICE.check_path, "/tmp/theirs", [ROOT, tmp, theirs], parent=FsAction.WRITE)
    ALICE.check_path("/tmp/new", [ROOT, tmp], parent=FsAction.WRITE)  # nothing to protect yet
    # The directory's owner may remove anything in it; so may the superuser.
    PermissionChecker(Caller("hdfs")).check_path("/tmp/theirs", [ROOT, tmp, theirs], parent=FsAction.WRITE)
    SUPER.check_path("/tmp/theirs", [ROOT, tmp, theirs], parent=FsAction.WRITE)
    # Without the sticky bit, w on the parent is enough.
    ALICE.check_path("/pub/theirs", [ROOT, Node("hdfs", "g", 0o777), theirs], parent=FsAction.WRITE)
    refused(ALICE.check_path, "/f", [ROOT, mine], parent=FsAction.WRITE)  # / is not writable


def test_access_and_ownership_of_the_inode_itself() -> None:
    file = Node("bob", "ops", 0o640, False)
    refused(ALICE.check_path, "/f", [ROOT, file], access=FsAction.READ)
    BOB.check_path("/f", [ROOT, file], access=FsAction.READ_WRITE, owner=True)
    ALICE.check_path("/missing", [ROOT], access=FsAction.READ, owner=True)  # the op reports "not found"
    refused(ALICE.check_path, "/f", [ROOT, Node("bob", "ops", 0o777, False)], owner=True)


def test_subtree_checks() -> None:
    tree = [
        SubtreeDirectory("/d", "alice", "eng", 0o755, True),
        SubtreeDirectory("/d/empty", "bob", "ops", 0o500, False),
        SubtreeDirectory("/d/full", "bob", "ops", 0o755, True),
    ]
    message = refused(ALICE.check_subtree, tree, FsAction.ALL, ignore_empty=True)
    assert 'access=ALL, inode="/d/full":bob:ops:drwxr-xr-x' in message
    ALICE.check_subtree(tree[:2], FsAction.ALL, ignore_empty=True)  # an empty directory needs nothing
    refused(ALICE.check_subtree, tree[:2], FsAction.READ_EXECUTE, ignore_empty=False)
    SUPER.check_subtree(tree, FsAction.ALL, ignore_empty=False)


def test_changing_owner_group_and_times() -> None:
    file = Node("alice", "eng", 0o644, False)
    ALICE.check_set_owner(file, "/f", None, "eng")
    ALICE.check_set_owner(file, "/f", "alice", None)  # to oneself: allowed (HDFS)
    assert "non-super user cannot change owner" in refused(ALICE.check_set_owner, file, "/f", "bob", None)
    assert refused(ALICE.check_set_owner, file, "/f", None, "ops").startswith("User alice does not belong to ops")
    assert "is not the owner" in refused(BOB.check_set_owner, file, "/f", None, "ops")
    SUPER.check_set_owner(file, "/f", "bob", "anything")
    ALICE.check_set_times(Node("alice", "eng", 0o444, False), "/f")  # the owner, even without w
    BOB.check_set_times(Node("alice", "eng", 0o646, False), "/f")  # anyone who may write
    refused(BOB.check_set_times, file, "/f")


def test_checking_off_allows_everything() -> None:
    off = PermissionChecker(Caller("eve"), enabled=False)
    off.check_path("/x/y", [ROOT, Node("bob", "ops", 0o000)], parent=FsAction.WRITE, access=FsAction.ALL)
    off.check_superuser()
    off.check_set_owner(Node("bob", "ops", 0), "/f", "eve", "eve")


def test_static_group_mapping_parses_like_hadoops() -> None:
    assert parse_static_mapping("alice=eng,ops; bob=eng ;carol=") == {
        "alice": frozenset({"eng", "ops"}),
        "bob": frozenset({"eng"}),
        "carol": frozenset(),
    }
    assert parse_static_mapping("") == {}
    for bad in ("alice", "=eng", "alice:eng"):
        with pytest.raises(ValueError, match="USER=GROUP"):
            parse_static_mapping(bad)


def test_groups_come_from_the_mapping_else_the_os_cached() -> None:
    lookups: list[str] = []
    now = [0.0]

    def lookup(user: str) -> frozenset[str]:
        lookups.append(user)
        return frozenset({f"{user}-os"})

    mapping = GroupMapping({"alice": frozenset({"eng"})}, lookup=lookup, cache_s=10.0, clock=lambda: now[0])
    assert mapping.groups("alice") == {"eng"}
    assert mapping.groups("bob") == {"bob-os"}
    assert mapping.groups("bob") == {"bob-os"}
    assert lookups == ["bob"]
    now[0] = 11.0
    mapping.groups("bob")
    assert lookups == ["bob", "bob"]


def test_os_groups_of_real_and_unknown_users() -> None:
    me = pwd.getpwuid(os.getuid())
    assert os_groups(me.pw_name)  # at least the primary group
    assert os_groups("no-such-user-anywhere") == frozenset()


def test_superuser_is_the_configured_user_or_a_supergroup_member() -> None:
    mapping = GroupMapping(
        {"ops-admin": frozenset({"supergroup"}), "alice": frozenset({"eng"})}, lookup=lambda _u: frozenset()
    )
    policy = Permissions(superuser="hdfs", supergroup="supergroup", groups=mapping)
    assert policy.is_superuser("hdfs") and policy.is_superuser("ops-admin")
    assert not policy.is_superuser("alice")
    assert policy.caller("alice") == Caller("alice", frozenset({"eng"}), False)
    assert policy.checker("ops-admin").bypass
