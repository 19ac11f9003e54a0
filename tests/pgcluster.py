"""A throwaway PostgreSQL server for the tests and the load bench: real, local, fast.

``start_cluster()`` runs ``initdb`` into a fresh temporary directory and starts the
server with ``pg_ctl`` on a free loopback port (plus a unix socket in the same
directory), tuned for throwaway data (no fsync, no full-page writes). ``stop()``
stops it at once and deletes everything. Databases are created on demand, always
with the C collation papertide needs for byte-order id paging; a prepared database
(migrations run once) can be kept as a template and copied per test.

Binaries, in this order: ``$PAPERTIDE_PG_BINDIR``; the PostgreSQL 16 + pgvector that
the ``pgserver`` wheel bundles (found on disk: importing pgserver or using its API
would, as root, create system users and chmod directories); Debian's newest
``/usr/lib/postgresql/N/bin``. ``initdb`` and ``postgres`` refuse to run as root, so
as root they run as an unprivileged user through ``runuser``; binaries that user
cannot reach (a venv under /root) are first linked or copied into the temp dir.

Run ``python tests/pgcluster.py`` to see which binaries would be used (exit 1: none).
"""

from __future__ import annotations

import atexit
import glob
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

INITDB_TIMEOUT = 90  # seconds; initdb takes 0.5-3 s here, depending on the machine's load
START_TIMEOUT = 30
STOP_TIMEOUT = 15
CONNECT_TIMEOUT = 10
STATEMENT_TIMEOUT_MS = 60_000  # CREATE DATABASE from a big template is the slowest admin statement
PORT_ATTEMPTS = 3  # a free port can be taken between our probe and the server's bind
LOCALE = "C.UTF-8"
SHM_MIN_FREE = 4 << 30  # bytes free on /dev/shm before clusters go there (see default_parent)
SETTINGS = {  # throwaway data: durability off; the load bench runs 2 servers + a worker with pools
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "400",
    "timezone": "'UTC'",
}
HOW_TO_GET_ONE = (
    "install the test extra (pip install -e '.[test]' brings pgserver on Linux x86_64 and macOS, "
    "Python 3.11-3.12), or Debian's server (apt-get install postgresql; `make postgresql`), "
    "or point PAPERTIDE_PG_BINDIR at a directory holding initdb, pg_ctl and postgres"
)
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PgUnavailable(Exception):
    """No PostgreSQL server could be started here; the message says why and what to do."""


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    kind: str  # "env" | "pgserver" | "debian"


def find_binaries() -> Binaries:
    """The PostgreSQL binaries to use, or PgUnavailable saying how to get some."""
    env = os.environ.get("PAPERTIDE_PG_BINDIR")
    if env:
        if not (Path(env) / "initdb").is_file():
            raise PgUnavailable(f"PAPERTIDE_PG_BINDIR={env} holds no initdb")
        return Binaries(Path(env), "env")
    bundled = _pgserver_bindir()
    if bundled:
        return Binaries(bundled, "pgserver")
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if debian:
        return Binaries(Path(debian[-1]).parent, "debian")
    raise PgUnavailable(f"no PostgreSQL binaries found: {HOW_TO_GET_ONE}")


def _pgserver_bindir() -> Path | None:
    spec = importlib.util.find_spec("pgserver")  # locates the package without running it
    for location in (spec.submodule_search_locations or []) if spec else []:
        bindir = Path(location) / "pginstall" / "bin"
        if (bindir / "initdb").is_file():
            return bindir
    return None


def _major_version(initdb: str) -> int:
    match = re.search(r"/postgresql/(\d+)/bin/", initdb)
    return int(match.group(1)) if match else -1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # same file system: instant, and the files keep their modes
    except OSError:
        shutil.copy2(src, dst)


def _only_needed(install: Path, *, slim: bool) -> Callable[[str, list[str]], list[str]]:
    """A copytree filter: no headers; for pgserver's layout, also no client tools or static libs."""
    keep = {install: {"bin", "lib", "share"}}
    if slim:
        keep |= {install / "bin": {"initdb", "pg_ctl", "postgres"}, install / "lib": {"postgresql"}}

    def ignore(directory: str, names: list[str]) -> list[str]:
        wanted = keep.get(Path(directory))
        return [] if wanted is None else [n for n in names if n not in wanted]

    return ignore


def _relocate(binaries: Binaries, dest: Path) -> Path:
    """Link or copy the installation under ``dest`` so another user can reach it.

    pgserver's binaries find their libraries through RPATH ``$ORIGIN/../../../pgserver.libs``
    (the wheel's ``site-packages/pgserver.libs``), so its layout is kept: ``dest/pkg/pginstall/
    {bin,lib,share}`` beside ``dest/pgserver.libs``.
    """
    install = binaries.bindir.parent
    target = dest / "pkg" / install.name
    shutil.copytree(install, target, symlinks=True, copy_function=_link_or_copy,
                    ignore=_only_needed(install, slim=binaries.kind == "pgserver"))
    libs = install.parent.parent / "pgserver.libs"
    if binaries.kind == "pgserver" and libs.is_dir():
        shutil.copytree(libs, dest / "pgserver.libs", symlinks=True, copy_function=_link_or_copy)
    for path in [dest, *dest.rglob("*")]:  # the copies' parents must be traversable
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return target / binaries.bindir.name


def _as_user(user: str) -> list[str]:
    """The command prefix that runs a program as ``user`` (empty when we are not root)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("runuser"):
        raise PgUnavailable("running as root and runuser is missing: postgres refuses to run as root")
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise PgUnavailable(f"running as root and there is no user {user!r} to run postgres as") from None
    return ["runuser", "-u", user, "--"]


def _reachable(run_as: list[str], bindir: Path) -> bool:
    if not run_as:
        return True
    check = subprocess.run([*run_as, "test", "-x", str(bindir / "postgres")], timeout=STOP_TIMEOUT)
    return check.returncode == 0


def _clean_env() -> dict[str, str]:
    """The environment for initdb/pg_ctl: no stray PG* settings, a locale that exists."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return {**env, "LC_ALL": LOCALE, "TZ": "UTC"}


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


class PgCluster:
    """One running throwaway server. Use :func:`start_cluster`; stop with ``stop()`` or ``with``."""

    def __init__(self, base: Path, bindir: Path, kind: str, port: int, run_as: list[str]):
        self.base, self.bindir, self.kind, self.port = base, bindir, kind, port
        self.data, self.log = base / "data", base / "server.log"
        self._run_as = run_as
        self._admin: psycopg.Connection | None = None
        self._lock = threading.RLock()
        self._templates: dict[str, str] = {}
        self._discarded: set[str] = set()
        self._stopped = False
        self._watchdog: subprocess.Popen | None = None
        atexit.register(self.stop)  # an orderly exit stops the server here; a killed one: _watch()

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    @property
    def socket_dir(self) -> Path:
        return self.base

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    @cached_property
    def version(self) -> str:
        """The server's version, e.g. ``"16.2"``."""
        return str(self._scalar("SHOW server_version")).split()[0]

    @cached_property
    def has_vector(self) -> bool:
        """Whether the ``vector`` extension (pgvector) can be created here."""
        return bool(self._scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"))

    def new_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create a database and return its URL.

        Without ``template`` it is empty, made from template0 with the C collation;
        with one it is a copy of that database (which keeps the template's collation).
        """
        name = _check_name(name or f"t_{uuid.uuid4().hex[:16]}")
        self._drop_discarded()
        if template is None:
            source = sql.SQL("template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE {}").format(sql.Literal(LOCALE))
        else:
            source = sql.Identifier(_check_name(template))
        self._execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(sql.Identifier(name), source, self._strategy))
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database now (by name, or the URL new_database returned), disconnecting its users.

        If a connection to it closed a moment ago, PostgreSQL waits for that backend to
        exit, in steps of 100 ms: :meth:`discard_database` avoids that wait.
        """
        name = _check_name(_name_of(name))
        with self._lock:
            if self._scalar("SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)):
                self._execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
            self._execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            self._templates.pop(name, None)
            self._discarded.discard(name)

    def discard_database(self, name: str) -> None:
        """Drop a database soon: at the next new_database() once nobody is connected to it
        (or with the whole cluster). Per-test teardown uses this: it costs nothing now."""
        with self._lock:
            self._discarded.add(_check_name(_name_of(name)))

    def template(self, name: str, prepare: Callable[[str], None]) -> str:
        """Build database ``name`` once with ``prepare(url)`` and keep it as a template.

        Returns ``name``, for ``new_database(template=name)``. Later calls with the same
        name return at once. Connections ``prepare`` left open are ended, and nobody may
        connect to the template afterwards (a connected template cannot be copied).
        """
        with self._lock:
            if name not in self._templates:
                url = self.new_database(name)
                try:
                    prepare(url)
                    self._seal(name)
                except BaseException:
                    self.drop_database(name)
                    raise
                self._templates[name] = url
        return name

    def stop(self) -> None:
        """Stop the server at once (no checkpoint) and delete its directory. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            atexit.unregister(self.stop)
            try:
                if self._admin is not None:
                    self._admin.close()
                if (self.data / "postmaster.pid").exists():
                    self._pg_ctl(*self._STOP, check=False)
            finally:
                shutil.rmtree(self.base, ignore_errors=True)
                if self._watchdog is not None:
                    self._watchdog.stdin.close()  # nothing left for it to do: it exits
                    self._watchdog.wait(timeout=STOP_TIMEOUT)

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else self.url
        return f"<PgCluster {self.kind} {state}>"

    # -- internals -------------------------------------------------------------------

    _STOP = ("-m", "immediate", "-w", "-t", str(STOP_TIMEOUT), "stop")

    def _watch(self) -> None:
        """Start a shell that stops the server and deletes its directory once we are gone.

        It waits for the end of a pipe that only this process writes to, which comes when
        the process exits in any way: a SIGTERM (``timeout``) or SIGKILL skips atexit.
        Its own session keeps a Ctrl-C in the terminal from reaching it first.
        """
        stop = shlex.join([*self._run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), *self._STOP])
        pid, base = shlex.quote(str(self.data / "postmaster.pid")), shlex.quote(str(self.base))
        script = f"cat >/dev/null; if [ -f {pid} ]; then {stop}; fi; rm -rf {base}"
        self._watchdog = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, cwd="/", env=_clean_env(),
                                          start_new_session=True)

    @cached_property
    def _strategy(self) -> sql.Composable:
        # FILE_COPY (PostgreSQL 15+) copies files instead of WAL-logging every block:
        # 20-30 ms instead of 30-45 ms a database here
        return sql.SQL(" STRATEGY FILE_COPY" if int(str(self._scalar("SHOW server_version_num"))) >= 150000 else "")

    def _drop_discarded(self) -> None:
        with self._lock:
            if not self._discarded:
                return
            rows = self._connection().execute(
                "SELECT DISTINCT datname FROM pg_stat_activity WHERE datname = ANY(%s)", (list(self._discarded),))
            busy = {row[0] for row in rows}
            for name in self._discarded - busy:
                self.drop_database(name)
            self._discarded &= busy

    def _seal(self, name: str) -> None:
        ident = sql.Identifier(name)
        self._execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(ident))
        self._execute(sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = {} AND pid <> pg_backend_pid()").format(sql.Literal(name)))

    def _connection(self) -> psycopg.Connection:
        if self._stopped:
            raise PgUnavailable(f"{self!r} was stopped")
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                          options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}")
        return self._admin

    def _execute(self, stmt: sql.Composable) -> None:
        with self._lock:
            self._connection().execute(stmt)

    def _scalar(self, query: str, params: tuple | None = None) -> object:
        with self._lock:
            row = self._connection().execute(query, params).fetchone()
        return row[0] if row else None

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run([*self._run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
                    cwd=self.base, timeout=START_TIMEOUT + 10, check=check, what="pg_ctl " + args[-1])

    def _start(self) -> None:
        """Start on ``self.port``; on a port taken meanwhile, retry on another one."""
        for attempt in range(PORT_ATTEMPTS):
            result = self._pg_ctl("-l", str(self.log), "-w", "-t", str(START_TIMEOUT),
                                  "-o", f"-p {self.port}", "start", check=False)
            if result.returncode == 0:
                return
            if "could not bind" not in _tail(self.log) or attempt == PORT_ATTEMPTS - 1:
                raise PgUnavailable(f"PostgreSQL ({self.kind}, {self.bindir}) did not start: "
                                    f"{result.stderr.strip()}\n--- server log ---\n{_tail(self.log)}")
            self.port = _free_port()


def _name_of(name_or_url: str) -> str:
    if name_or_url.startswith("postgresql://"):
        return urlsplit(name_or_url).path.lstrip("/")
    return name_or_url


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"database name {name!r}: use 1-63 lowercase letters, digits or _, not starting with a digit")
    return name


def _run(cmd: list[str], *, cwd: Path, timeout: float, check: bool, what: str) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(cmd, cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise PgUnavailable(f"{what} took over {timeout:.0f} s") from e
    if check and result.returncode != 0:
        raise PgUnavailable(f"{what} failed ({result.returncode}): {(result.stderr or result.stdout).strip()}")
    return result


def _initdb(bindir: Path, data: Path, run_as: list[str]) -> None:
    _run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
          "-E", "UTF8", f"--locale={LOCALE}", "--no-sync"],
         cwd=data.parent, timeout=INITDB_TIMEOUT, check=True, what="initdb")
    lines = [f"{key} = {value}" for key, value in SETTINGS.items()]
    lines.append(f"unix_socket_directories = '{data.parent}'")
    with open(data / "postgresql.conf", "a") as conf:  # appended settings override the defaults above
        conf.write("\n# papertide test cluster\n" + "\n".join(lines) + "\n")


def default_parent() -> Path:
    """Where clusters live: /dev/shm when it is a roomy tmpfs, else the usual temp dir.

    Even without fsync, CREATE DATABASE on this machine's disk took 100-400 ms against
    20-40 ms in memory, and per-test databases are the suite's hot path.
    """
    shm = Path("/dev/shm")
    try:
        stat = os.statvfs(shm)
    except OSError:
        return Path(tempfile.gettempdir())
    roomy = stat.f_bavail * stat.f_frsize >= SHM_MIN_FREE
    return shm if roomy and os.access(shm, os.W_OK | os.X_OK) else Path(tempfile.gettempdir())


def start_cluster(*, user: str = "nobody", parent: str | Path | None = None) -> PgCluster:
    """Start a throwaway server (~1-2 s) in a new directory under ``parent``
    (default: :func:`default_parent`); as root, it runs as ``user``."""
    binaries = find_binaries()
    run_as = _as_user(user)
    # a short path: a unix socket's path has at most 107 bytes
    base = Path(tempfile.mkdtemp(prefix="pt-pg-", dir=parent or default_parent()))
    cluster = None
    try:
        bindir = binaries.bindir
        if run_as:
            if not _reachable(run_as, bindir):
                bindir = _relocate(binaries, base / "pg")
            shutil.chown(base, user)
        _initdb(bindir, base / "data", run_as)
        cluster = PgCluster(base, bindir, binaries.kind, _free_port(), run_as)
        cluster._start()
        cluster._watch()
        return cluster
    except BaseException:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
        raise


def main() -> int:
    try:
        found = find_binaries()
    except PgUnavailable as e:
        print(e, file=sys.stderr)
        return 1
    print(found.kind, found.bindir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
