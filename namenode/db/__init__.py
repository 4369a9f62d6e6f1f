"""SQL metadata store of the NameNode."""
