"""NameNode: namespace, block map and replication state in SQL."""
