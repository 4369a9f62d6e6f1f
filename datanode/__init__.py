"""DataNode: stores checksummed block replicas and serves them."""
