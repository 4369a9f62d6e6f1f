"""Plumbing both servers share: error rendering, logging, and serving on a pre-bound socket.

Not part of the wire contract (that is `client.protocol`): this is how our FastAPI
services behave, kept in one place so the NameNode and DataNodes cannot drift apart.
"""
