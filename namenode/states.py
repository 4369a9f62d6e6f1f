"""State names stored in the metadata tables (one place, so no module needs another for them)."""

from __future__ import annotations

# blocks.state: under_construction -> committed (length known) -> complete (enough replicas reported)
BLOCK_UC = "under_construction"
BLOCK_COMMITTED = "committed"
BLOCK_COMPLETE = "complete"
#: The last block of a file being truncated: new stamp and length set, replicas still being cut.
BLOCK_UNDER_RECOVERY = "under_recovery"

# replicas.state
REPLICA_FINALIZED = "finalized"
REPLICA_CORRUPT = "corrupt"

# datanodes.state: the last liveness verdict acted on (stale is derived from heartbeat age)
STATE_LIVE = "live"
STATE_DEAD = "dead"
