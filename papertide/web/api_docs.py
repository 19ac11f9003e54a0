"""``/api/docs``: the API's OpenAPI schema in a browsable page, with no CDN.

FastAPI's own ``/docs`` and ``/redoc`` load their scripts from a CDN and start them
with an inline script, which papertide's Content-Security-Policy forbids (and the
server may be offline). This page uses the Swagger UI vendored under
``static/swagger/`` (see its README.txt) and starts it from ``static/swagger/init.js``,
which reads the schema URL from a ``data-url`` attribute: no inline script or style.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from papertide import __version__

router = APIRouter()

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>papertide API</title>
<link rel="icon" href="{static}/favicon.svg?v={v}" type="image/svg+xml">
<link rel="stylesheet" href="{static}/swagger/swagger-ui.css?v={v}">
<script defer src="{static}/swagger/swagger-ui-bundle.js?v={v}"></script>
<script defer src="{static}/swagger/init.js?v={v}"></script>
</head>
<body>
<noscript><p>This page needs JavaScript. The schema itself is at <a href="{schema}">{schema}</a>.</p></noscript>
<div id="swagger-ui" data-url="{schema}"></div>
</body>
</html>
"""


@router.get("/docs", include_in_schema=False)
def docs(request: Request) -> HTMLResponse:
    """The Swagger UI page over ``/api/openapi.json``."""
    root = request.scope.get("root_path", "")
    schema = escape(root + (request.app.openapi_url or "/api/openapi.json"))
    return HTMLResponse(PAGE.format(static=escape(root + "/static"), v=escape(__version__), schema=schema))
