"""structlog set-up shared by the servers: console lines by default, JSON lines on request."""

from __future__ import annotations

import logging
import sys

import structlog

from server_common.request_id import RequestIdLogFilter


def configure_logging(service: str, *, json: bool = False, level: str = "info") -> None:
    """Route structlog and stdlib logging to stderr, tagged with the service name."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks if json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Client-library code running inside the servers (pipeline forwarding, copies) logs via stdlib,
    # with the request id of the request it runs for (server_common.request_id).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s [%(levelname)s] {service} %(name)s: %(message)s%(request_suffix)s")
    )
    handler.addFilter(RequestIdLogFilter())
    logging.basicConfig(level=numeric, handlers=[handler])
    logging.getLogger("httpx").setLevel(logging.WARNING)
