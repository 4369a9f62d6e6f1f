"""The NameNode's operator pages (HTML at `/`) and their JSON twins (`/api/...`)."""
