"""The ASGI app: one FastAPI application for the HTML pages and the JSON API.

:func:`create_app` takes settings the caller loaded (the CLI, a test) and wires
everything once per app: the store (opened here, closed at shutdown), the search index
and n-gram engine (:class:`Engines`: opened on first use, reopened when the store has
moved and ``papertide index`` has written newer ones), the Jinja2 templates
(autoescaped), the static files under ``/static``, the routers, and the error
handling. This is where engine exceptions become HTTP statuses: every error — an
unknown page, an invalid parameter, a bug — is a proper HTML page on HTML routes and
``{"detail": …}`` JSON under ``/api/``, never a traceback (tracebacks go to the log).

The app's lifespan also runs the background retry of pending submissions
(:class:`papertide.submissions.PendingRetrier`) when asked to. Several worker processes
(``papertide serve --workers N``) need an import string: :func:`app_from_env` is that
factory, reading the settings :func:`config_env` put in the environment.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from papertide import __version__
from papertide.config import Config, load_config
from papertide.errors import ConfigError, ConflictError, InvalidIdError, NotFoundError, PapertideError, StoreError
from papertide.index import IndexMissingError, SearchIndex, index_dir
from papertide.phrases import Phrases, ngram_dir
from papertide.store import Store, open_store
from papertide.web import pages_common

log = logging.getLogger("papertide.web")

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"
APP_FACTORY = "papertide.web.app:app_from_env"  # for uvicorn with factory=True
RETRY_ENV = "PAPERTIDE_SERVE_RETRY_SECONDS"  # the submissions retry interval of app_from_env's app


# ------------------------------------------------------------------ engines


class Engines:
    """The search index and the n-gram engine of one app, opened lazily and kept fresh.

    Opening them reads flat files (memory-mapped), so it happens once, on the first
    request that needs them. A later request reopens one only when the store's
    watermark is past what the loaded copy covers *and* the copy on disk has been
    rewritten since (``papertide index`` ran): one ``MAX(seq)`` query and one ``stat``
    per request, a reopen per index run. The query embedder is carried over.
    """

    def __init__(self, config: Config, store: Store) -> None:
        self.config, self.store = config, store
        self._lock = threading.Lock()
        self._index: SearchIndex | None = None
        self._index_stamp: tuple | None = None
        self._phrases: Phrases | None = None
        self._phrases_stamp: tuple | None = None

    @property
    def _index_marker(self) -> Path:
        return index_dir(self.config) / "facts" / "params.json"

    @property
    def _phrases_marker(self) -> Path:
        return ngram_dir(self.config) / "state.json"

    def search_index(self) -> SearchIndex:
        """The loaded search index; :class:`IndexMissingError` when none was built."""
        index = self._index
        if index is not None and not self._stale(index.watermark, self._index_marker, self._index_stamp):
            return index
        with self._lock:
            if self._index is None or self._stale(self._index.watermark, self._index_marker, self._index_stamp):
                self._reopen_index()
        if self._index is None:
            raise IndexMissingError("the search index is not built yet: run `papertide index` (or `papertide serve`)")
        return self._index

    def _reopen_index(self) -> None:
        stamp = _stamp(self._index_marker)
        old = self._index
        try:
            # The embedder of the old copy is kept: loading the model again costs a second.
            fresh = SearchIndex.open(self.config, self.store, embedder=getattr(old, "_embedder", None))
        except IndexMissingError:
            return
        except (OSError, ValueError, PapertideError) as e:  # mid-rewrite or damaged: keep what we have
            log.warning("cannot open the search index (%s); %s", e, "keeping the loaded one" if old else "none loaded")
            return
        if fresh.lexical.watermark != fresh.watermark or fresh.vectors.watermark != fresh.watermark:
            return  # `papertide index` is between saves: try again on a later request
        self._index, self._index_stamp = fresh, stamp

    def phrases(self) -> Phrases | None:
        """The n-gram engine, or None when it was never built."""
        engine = self._phrases
        if engine is not None and not self._stale(engine.watermark, self._phrases_marker, self._phrases_stamp):
            return engine
        with self._lock:
            engine = self._phrases
            if engine is None or self._stale(engine.watermark, self._phrases_marker, self._phrases_stamp):
                stamp = _stamp(self._phrases_marker)
                try:
                    self._phrases, self._phrases_stamp = Phrases.open(self.config), stamp
                except (OSError, ValueError, PapertideError) as e:
                    if stamp is not None:
                        log.warning("cannot open the n-gram index (%s)", e)
        return self._phrases

    def _stale(self, covered: int | None, marker: Path, stamp: tuple | None) -> bool:
        if covered is not None and covered >= self.store.watermark():
            return False
        return _stamp(marker) != stamp


def _stamp(path: Path) -> tuple | None:
    """What identifies one written version of a file (None when there is none)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


# ------------------------------------------------------------------- errors


def status_for(exc: BaseException) -> int:
    """The HTTP status an engine exception stands for."""
    if isinstance(exc, (NotFoundError, InvalidIdError)):
        return 404
    if isinstance(exc, (IndexMissingError, StoreError)):
        return 503
    if isinstance(exc, ConfigError):
        return 500
    if isinstance(exc, ConflictError):  # a taken username, a duplicate
        return 409
    if isinstance(exc, PapertideError):
        return 400
    return 500


_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed", 409: "Conflict",
           422: "Invalid request", 429: "Too many requests", 500: "Something went wrong",
           503: "Not available yet"}  # fmt: skip


def error_response(request: Request, status: int, message: str, headers: dict | None = None) -> Response:
    """An error as a page (HTML routes) or as ``{"detail": message}`` (``/api/``)."""
    if request.url.path.startswith("/api/"):
        from starlette.responses import JSONResponse

        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    title = _TITLES.get(status, "Error")
    try:
        return pages_common.render(request, "error.html", {"status": status, "title": title, "message": message},
                                   status=status, headers=headers)  # fmt: skip
    except Exception:  # the error page itself failed: a bare page, still no traceback
        log.exception("rendering the error page failed")
        return HTMLResponse(f"<!doctype html><title>{status}</title><h1>{status} {title}</h1>", status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ())[1:]) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else _TITLES.get(exc.status_code, "Error")
        if exc.status_code == 404 and message == "Not Found":
            message = f"There is no page at {request.url.path}."
        return error_response(request, exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 422, _validation_message(exc))

    @app.exception_handler(PapertideError)
    async def engine_error(request: Request, exc: PapertideError) -> Response:
        status = status_for(exc)
        if status >= 500 and not isinstance(exc, IndexMissingError):
            log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc)
        return error_response(request, status, str(exc) if status < 500 or status == 503 else _TITLES[500])


class CatchAll:
    """Pure ASGI: an exception that escaped every handler becomes the 500 page (logged).

    Installed inside the security-headers middleware, so the 500 page carries them too
    (Starlette's own last-resort handler sits outside every middleware).
    """

    def __init__(self, app: Callable, render: Callable[[Request], Response] | None = None) -> None:
        self.app = app
        self.render = render or (lambda request: error_response(request, 500, _TITLES[500] + ". It has been logged."))

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # too late for a page: the server closes the connection
            await self.render(Request(scope))(scope, receive, send)


# ---------------------------------------------------------------------- app


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template, whatever its extension
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(pages_common.template_globals(__version__))
    return Jinja2Templates(env=env)


def create_app(config: Config, *, retry_submissions: float = 0) -> FastAPI:
    """The papertide web app over the store and indexes of ``config``'s home.

    ``retry_submissions`` > 0 retries pending submissions every that many seconds in a
    background thread while the app runs (off by default: tests turn it on when they want it).
    """
    store = open_store(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        retrier = app.state.retrier
        if retrier is not None:
            retrier.start()
        try:
            yield
        finally:
            if retrier is not None and not retrier.stop(timeout=10):
                log.warning("the submissions retry is still waiting for arXiv; leaving it behind")
            store.close()

    app = FastAPI(title="papertide", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json", lifespan=lifespan)  # fmt: skip
    app.state.config = config
    app.state.store = store
    app.state.engines = Engines(config, store)
    app.state.templates = make_templates()
    app.state.retrier = _retrier(store, config, retry_submissions)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    from papertide.web import (api, feeds, pages, pages_account, pages_community, pages_paper, pages_search,
                               pages_subscribe, session)  # fmt: skip
    from papertide.web.security import ApiCors

    for module in (pages, pages_paper, pages_search, pages_account, pages_community, pages_subscribe, api, feeds):
        app.include_router(module.router)
    install_error_handlers(app)
    session.install(app)  # who is asking: request.state.user / .csrf (inside CatchAll)
    app.add_middleware(CatchAll)
    app.add_middleware(ApiCors)  # cross-origin reads of /api/ (inside the security headers)
    _add_security_headers(app)
    return app


def _retrier(store: Store, config: Config, every: float):
    if not every or every <= 0:
        return None
    from papertide.submissions import PendingRetrier

    return PendingRetrier(store, config, every)


def config_env(config: Config, *, retry_submissions: float = 0) -> dict[str, str]:
    """Environment variables from which :func:`app_from_env` (in a worker process) builds
    the same settings: ``PAPERTIDE_HOME`` and ``PAPERTIDE_<SETTING>`` for every setting
    that is set (they outrank ``config.toml``, which holds the same values anyway)."""
    env = {"PAPERTIDE_HOME": str(config.home), RETRY_ENV: repr(float(retry_submissions))}
    for f in fields(Config):
        value = getattr(config, f.name)
        if f.name != "home" and value is not None and value != "":
            env["PAPERTIDE_" + f.name.upper()] = str(value)
    return env


def app_from_env() -> FastAPI:
    """The app of the settings in the environment (see :func:`config_env`): uvicorn's factory
    (:data:`APP_FACTORY`, ``factory=True``) for ``papertide serve --workers N``."""
    raw = os.environ.get(RETRY_ENV) or "0"
    try:
        every = float(raw)
    except ValueError:
        raise ConfigError(f"{RETRY_ENV} must be a number of seconds, not {raw!r}") from None
    return create_app(load_config(), retry_submissions=every)


def _add_security_headers(app: FastAPI) -> None:
    """Part B's middleware, outermost of ours, so every response (the 500 page too) carries it."""
    from papertide.web.security import SecurityHeaders

    app.add_middleware(SecurityHeaders)
