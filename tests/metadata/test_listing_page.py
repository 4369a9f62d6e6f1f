"""Directory listings are built as plain JSON entries (namenode/inodes.py `listing_entry`), not as
FileStatus models: every entry must still say exactly what `stat` of the same path says, and the
encoded page must parse back into the same `DirectoryListing` (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.protocol.client_namenode import (
    CompleteRequest,
    CreateRequest,
    DirectoryListing,
    FileType,
    MkdirsRequest,
    SetAttributesRequest,
)
from namenode.service import NameNode
from tests.conftest import BACKENDS
from tests.metadata.conftest import in_process_namenode

USER = "lister"


@pytest.fixture(params=BACKENDS)
def nn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NameNode]:
    with in_process_namenode(request.param, tmp_path, USER) as namenode:
        yield namenode


async def populate(nn: NameNode, root: str) -> None:
    """A closed file, one still being written, an empty and a full directory, odd names."""
    await nn.mkdirs(MkdirsRequest(path=f"{root}/sub/deeper", parents=True), user=USER)
    await nn.mkdirs(MkdirsRequest(path=f"{root}/empty dir", mode=0o700), user=USER)
    for name in ("closed", "ünïcode ✓", 'quote"and\\slash'):
        status = await nn.create(CreateRequest(path=f"{root}/{name}", client_name="w", replication=2), user=USER)
        await nn.complete(CompleteRequest(path=f"{root}/{name}", file_id=status.file_id, client_name="w"), user=USER)
    await nn.create(CreateRequest(path=f"{root}/open", client_name="w", block_size=1 << 20), user=USER)
    await nn.set_attributes(SetAttributesRequest(path=f"{root}/closed", mode=0o640, group="staff"), user=USER)


@pytest.mark.parametrize("root", ["/", "/top"])
def test_every_entry_says_what_stat_says(nn: NameNode, root: str) -> None:
    async def scenario() -> None:
        base = root.rstrip("/")
        await populate(nn, base)
        page = await nn.list_page(root, "", 1000, user=USER)
        listing = page.to_model()
        assert DirectoryListing.model_validate_json(page.to_json()) == listing
        assert not listing.has_more
        names = [entry.name for entry in listing.entries]
        assert names == sorted(names, key=lambda n: n.encode()) and len(names) == 6
        for entry in listing.entries:
            assert entry == await nn.stat(f"{base}/{entry.name}", user=USER)
        by_name = {entry.name: entry for entry in listing.entries}
        assert by_name["sub"].type is FileType.DIRECTORY and by_name["sub"].children == 1
        assert by_name["empty dir"].children == 0 and by_name["empty dir"].mode == 0o700
        assert by_name["open"].under_construction and by_name["open"].block_size == 1 << 20
        assert (by_name["closed"].mode, by_name["closed"].group, by_name["closed"].replication) == (0o640, "staff", 2)

    asyncio.run(scenario())


def test_pages_and_a_file_listed_as_itself(nn: NameNode) -> None:
    async def scenario() -> None:
        await populate(nn, "/p")
        first = (await nn.list_page("/p", "", 4, user=USER)).to_model()
        rest = (await nn.list_page("/p", first.entries[-1].name, 4, user=USER)).to_model()
        assert first.has_more and not rest.has_more
        assert len(first.entries) + len(rest.entries) == 6
        itself = await nn.list_page("/p/closed", "", 10, user=USER)
        assert DirectoryListing.model_validate_json(itself.to_json()).entries == [await nn.stat("/p/closed", user=USER)]

    asyncio.run(scenario())
