"""Small value types shared by every conversation, plus HTTP header names."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: Largest block id / generation stamp / length we accept (fits a signed 64-bit column).
MAX_INT64 = 2**63 - 1

BlockId = Annotated[int, Field(gt=0, le=MAX_INT64)]
GenStamp = Annotated[int, Field(gt=0, le=MAX_INT64)]
NonNegative = Annotated[int, Field(ge=0, le=MAX_INT64)]
DatanodeId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
#: Text the metadata database keeps: PostgreSQL refuses NUL characters in text (a 500), so every
#: stored wire string refuses them up front (400), on every backend alike.
NUL_FREE = r"^[^\x00]*$"
Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://[^\s\x00]+$")]

HEADER_USER = "X-DFS-User"
HEADER_CLIENT_NAME = "X-DFS-Client"
HEADER_REQUEST_ID = "X-Request-ID"
HEADER_WRITE = "X-DFS-Write"
HEADER_READ = "X-DFS-Read"

#: What an `X-Request-ID` may be: servers replace anything else with an id of their own, so
#: arbitrary caller text never reaches a log line.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_valid_request_id(value: str) -> bool:
    """1-64 characters of ``[A-Za-z0-9._-]`` (the form a server accepts and echoes)."""
    return REQUEST_ID_PATTERN.fullmatch(value) is not None


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are refused so typos surface as 4xx."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ExtendedBlock(WireModel):
    """A block id with its generation stamp: together they name one version of a block."""

    block_id: BlockId
    gen_stamp: GenStamp


class DatanodeRef(WireModel):
    """Where to reach a DataNode: its persistent id and its advertised base URL."""

    id: DatanodeId
    url: Url
    rack: str = "/default-rack"
