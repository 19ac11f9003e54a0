"""The web surface: one ASGI app serving the HTML pages and (later) the JSON API.

``create_app(config)`` builds it; ``papertide serve`` runs it under uvicorn. Pages ask
the same store and rankers as the command line, and this package is where engine
exceptions become HTTP status codes and error pages.
"""

from papertide.web.app import create_app

__all__ = ["create_app"]
