"""The Jinja environment of a server's pages: its own templates first, then the shared layout."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from server_common.web import formatting

SHARED_TEMPLATES = Path(__file__).parent / "templates"


def make_templates(own_templates: Path, service: str) -> Jinja2Templates:
    """Templates for one server; `service` names it in every page's title and header."""
    environment = Environment(
        loader=ChoiceLoader([FileSystemLoader(own_templates), FileSystemLoader(SHARED_TEMPLATES)]),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        bytes=formatting.human_bytes,
        rate=formatting.human_rate,
        duration=formatting.human_duration,
        utc=formatting.utc_time,
        utc_ms=formatting.utc_time_ms,
        perms=formatting.permission_string,
    )
    environment.globals.update(
        service=service,
        percent=formatting.percent,
    )
    return Jinja2Templates(env=environment)
