"""What the NameNode's and DataNodes' status pages share: the layout, the CSS, number formats, charts.

Pages are rendered on the server from the same view models their JSON twins (`/api/...`) return,
so a page can never show a number the API does not. Nothing is fetched from the internet: the CSS
is inlined and charts are inline SVG, so the pages work on an offline network.
"""

from server_common.web.rendering import make_templates

__all__ = ["make_templates"]
