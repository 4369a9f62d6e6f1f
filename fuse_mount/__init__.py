"""The cluster as a local file system (FUSE): `dfs mount MOUNTPOINT`, then cp, rsync, tar, diff.

Built only on the public SDK (`client.DFSClient`). Reads stream from DataNodes with
checksums verified and replicas failed over; sequential writes stream into blocks;
writes HDFS cannot take in place are spooled locally and the file is replaced
atomically on close. See docs/fuse.md for what works and what each failure returns.
"""
