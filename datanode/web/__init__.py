"""The DataNode's own status page (HTML at `/`) and its JSON twin (`/api/status`)."""
