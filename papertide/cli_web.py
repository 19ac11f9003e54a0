"""The ``papertide serve`` command: the web app under uvicorn.

Thin like the rest of the CLI. Before serving it brings the search index and the
n-gram engine up to the store (so search, similar papers and autocomplete work from
the first request) and lists the demo papers on their day if the demo corpus is
loaded. ``--workers N`` runs N processes through uvicorn's app factory (the settings go
to them in the environment), and pending submissions are retried every
``--retry-submissions`` seconds by one of them. Registered on the main group by ``cli.py``.
"""

from __future__ import annotations

import os
import socket

import click


def register(cli: click.Group, pass_ctx) -> None:
    @cli.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
    @click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
                  help="Worker processes (each holds its own store connection and index copies).")
    @click.option("--retry-submissions", "retry_every", type=click.FloatRange(min=0), default=300.0,
                  show_default=True, metavar="SECONDS",
                  help="Ask arXiv again for pending submissions this often (0 = never; one worker does it).")
    @click.option("--no-index", is_flag=True, help="Serve at once without catching up the search indexes.")
    @pass_ctx
    def serve_cmd(obj, host: str, port: int, workers: int, retry_every: float, no_index: bool) -> None:
        """Serve the web app: daily papers, trending, search, paper pages."""
        import uvicorn

        from papertide.web.app import APP_FACTORY, config_env, create_app

        _prepare(obj, no_index)
        shown = f"[{host}]" if ":" in host else host
        options = {"host": host, "port": port, "log_level": "info", "server_header": False}
        if workers == 1:
            app = create_app(obj.config, retry_submissions=retry_every)
            click.echo(f"papertide at http://{shown}:{port}/ (Ctrl+C stops it)", err=True)
            uvicorn.run(app, **options)
            return
        # Worker processes import the app by name; the settings travel in their environment.
        os.environ.update(config_env(obj.config, retry_submissions=retry_every))
        click.echo(f"papertide at http://{shown}:{port}/ with {workers} workers (Ctrl+C stops it)", err=True)
        run_workers(uvicorn.Config(APP_FACTORY, factory=True, workers=workers, **options))


def tcp_listener(config) -> socket.socket:
    """uvicorn's listening socket, marked as TCP so every accepted connection gets TCP_NODELAY.

    uvicorn binds the socket of ``--workers N`` with ``proto`` 0; accepted sockets inherit
    it and asyncio sets TCP_NODELAY only on ``proto == IPPROTO_TCP``, so Nagle's algorithm
    held each response body until the client's delayed ACK: ~40 ms on every keep-alive
    request (Kludex/uvicorn#3149; one worker is not affected). The same descriptor is
    wrapped again with its protocol read from the kernel.
    """
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        sock.set_inheritable(True)
    return sock


def run_workers(config) -> None:
    """What ``uvicorn.run`` does for several workers, over :func:`tcp_listener`'s socket."""
    import inspect

    from uvicorn import Server
    from uvicorn.supervisors import Multiprocess

    sock = tcp_listener(config)
    kwargs = {"sockets": [sock]}
    if "target" in inspect.signature(Multiprocess).parameters:  # older uvicorn releases took the server's run
        kwargs["target"] = Server(config).run
    try:
        Multiprocess(config, **kwargs).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def _prepare(obj, no_index: bool) -> None:
    """Catch the indexes up (unless ``no_index``) and list the demo papers on their day."""
    from papertide.web.demo import list_demo_papers

    with obj.store() as store:
        if not no_index:
            from papertide.index import update_index

            click.echo("catching up the search indexes…", err=True)
            click.echo(update_index(store, obj.config).summary(), err=True)
        listed = list_demo_papers(store)
        if listed:
            click.echo(f"listed {listed} demo papers on their day's page", err=True)
        if store.count() == 0:
            click.echo("the store is empty: load papers with `papertide demo` or `papertide ingest`", err=True)
