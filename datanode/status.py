"""What a DataNode says about itself: `GET /v1/info`, its status page and that page's JSON twin."""

from __future__ import annotations

import dataclasses
from typing import Any

from datanode.config import DataNodeSettings
from datanode.service import DataNode


def describe(datanode: DataNode, settings: DataNodeSettings) -> dict[str, Any]:
    """Identity, registration, space, transfers, traffic counters, scanner progress, recent errors."""
    capacity, free = datanode.store.disk_usage()
    return {
        "id": datanode.store.identity.datanode_id,
        "cluster_id": datanode.store.identity.cluster_id,
        "url": datanode.advertise_url,
        "rack": settings.rack,
        "namenode": settings.namenode_url,
        "data_dir": str(settings.data_dir.resolve()),
        "registered": datanode.link.registered.is_set(),
        "replicas": len(datanode.store.snapshot()),
        "used": datanode.store.used_bytes(),
        "capacity": capacity,
        "remaining": free,
        "active_transfers": datanode.active_transfers,
        "replication_bytes_sent": datanode.replicator.bytes_sent,
        "bytes_received": datanode.counters.bytes_received,
        "bytes_sent": datanode.counters.bytes_sent,
        "checksum_failures": datanode.counters.checksum_failures,
        "recent_errors": datanode.counters.recent_errors_json(),
        "scanner": {
            "period_s": datanode.scanner.period_s,
            "rate_bytes_per_s": datanode.scanner.rate,
            **dataclasses.asdict(datanode.scanner.stats),
        },
    }
