"""EmbeddedPostgres: start, connect, crash (kill -9), restart with the data intact."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.harness.ports import free_port
from tests.harness.wait import wait_until_sync
from tpf_store import EmbeddedPostgres, EmbeddedPostgresError, embedded_default_database
from tpf_store.embedded._process_group import live_members
from tpf_store.embedded._stale_locks import remove_if_stale


@pytest.fixture
def embedded(embedded_data_dir: Path) -> Iterator[EmbeddedPostgres]:
    """A server of the test's own (not started), so that killing it disturbs no other test."""
    server = EmbeddedPostgres(embedded_data_dir)
    try:
        yield server
    finally:
        server.stop()


def _setting(url: str, name: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    assert row is not None
    value: str = row[0]
    return value


def test_start_initialises_cluster_and_accepts_connections(embedded: EmbeddedPostgres) -> None:
    embedded.start()

    assert (embedded.pgdata_dir / "PG_VERSION").read_text().strip() == "18"
    with psycopg.connect(embedded.url) as conn:
        row = conn.execute("SELECT current_user, current_database(), 1 + 1").fetchone()
    assert row == ("postgres", "postgres", 2)
    assert embedded.url == f"postgresql://postgres@127.0.0.1:{embedded.port}/postgres"
    assert _setting(embedded.url, "max_connections") == "200"
    assert _setting(embedded.url, "fsync") == "on"
    assert _setting(embedded.url, "server_encoding") == "UTF8"


def test_fast_mode_skips_disk_flushes_but_keeps_commits_synchronous(
    embedded_data_dir: Path,
) -> None:
    with EmbeddedPostgres(embedded_data_dir, fast=True) as server:
        assert _setting(server.url, "fsync") == "off"
        assert _setting(server.url, "full_page_writes") == "off"
        assert _setting(server.url, "synchronous_commit") == "on"
    assert not server.is_running


def test_fast_mode_loses_no_acknowledged_commit_on_kill(embedded_data_dir: Path) -> None:
    with EmbeddedPostgres(embedded_data_dir, fast=True) as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE acknowledged (n int)")
            for n in range(100):
                conn.execute("INSERT INTO acknowledged VALUES (%s)", (n,))

        server.kill()
        server.start()

        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT count(*) FROM acknowledged").fetchone() == (100,)


def test_committed_data_survives_kill_and_restart(embedded: EmbeddedPostgres) -> None:
    embedded.start()
    port = embedded.port
    with psycopg.connect(embedded.url) as conn:
        conn.execute("CREATE TABLE survivors (name text)")
        conn.execute("INSERT INTO survivors VALUES ('committed before the crash')")
    postmaster_pid = embedded.pid
    assert postmaster_pid is not None

    embedded.kill()

    assert not embedded.is_running
    assert live_members(postmaster_pid) == []
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(embedded.url, connect_timeout=2)

    embedded.restart()

    assert embedded.port == port
    assert embedded.pid != postmaster_pid
    with psycopg.connect(embedded.url) as conn:
        rows = conn.execute("SELECT name FROM survivors").fetchall()
    assert rows == [("committed before the crash",)]
    # Proof that the kill was a crash: the server had to recover instead of finding a clean
    # shutdown checkpoint.
    assert "automatic recovery in progress" in embedded.log_path.read_text()


def test_open_connections_fail_after_kill_and_new_ones_work_after_restart(
    embedded: EmbeddedPostgres,
) -> None:
    embedded.start()
    conn = psycopg.connect(embedded.url, autocommit=True)
    try:
        embedded.kill()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()
    embedded.start()
    with psycopg.connect(embedded.url) as fresh:
        assert fresh.execute("SELECT 1").fetchone() == (1,)


def test_new_instance_on_same_data_dir_reuses_port_and_data(embedded_data_dir: Path) -> None:
    with EmbeddedPostgres(embedded_data_dir, fast=True) as first:
        first.ensure_database("kept")
        port = first.port
    with EmbeddedPostgres(embedded_data_dir, fast=True) as second:
        assert second.port == port
        with psycopg.connect(second.url_for("kept")) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("kept",)


def test_ensure_database_creates_once(embedded: EmbeddedPostgres) -> None:
    embedded.start()

    embedded.ensure_database("tpf")
    embedded.ensure_database("tpf")

    with psycopg.connect(embedded.url) as conn:
        count = conn.execute("SELECT count(*) FROM pg_database WHERE datname = 'tpf'").fetchone()
    assert count == (1,)


def test_start_fails_with_log_tail_when_port_is_taken(embedded_data_dir: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken_port = squatter.getsockname()[1]
        server = EmbeddedPostgres(embedded_data_dir, port=taken_port, fast=True)

        with pytest.raises(EmbeddedPostgresError, match="Address already in use"):
            server.start()

    assert not server.is_running


@pytest.mark.skipif(os.geteuid() != 0, reason="the user switch only happens when run as root")
def test_as_root_the_server_runs_as_an_unprivileged_user(embedded: EmbeddedPostgres) -> None:
    embedded.start()

    status = Path(f"/proc/{embedded.pid}/status").read_text()
    real_uid = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]
    assert real_uid != "0"
    assert embedded.pgdata_dir.stat().st_uid == int(real_uid)


def test_cli_prints_url_and_stops_on_sigterm(embedded_data_dir: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "tpf_store.embedded", "--data-dir", str(embedded_data_dir)]
    cli = subprocess.Popen(
        [*command, "--port", str(port), "--fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert cli.stdout is not None
        url = cli.stdout.readline().strip()
        assert url == f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        postmaster_pid = int(
            (embedded_data_dir / "pgdata" / "postmaster.pid").read_text().split()[0]
        )

        cli.send_signal(signal.SIGTERM)

        assert cli.wait(timeout=30) == 0
        wait_until_sync(
            lambda: live_members(postmaster_pid) == [], timeout_s=10, what="postgres gone"
        )
        assert not (embedded_data_dir / "pgdata" / "postmaster.pid").exists()
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        # A CLI killed before its cleanup leaves postgres running in its own session.
        pid_file = embedded_data_dir / "pgdata" / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)


def test_embedded_default_database_creates_the_tpf_database_and_keeps_it(
    embedded_data_dir: Path,
) -> None:
    server, url = embedded_default_database(embedded_data_dir)
    try:
        assert url == server.url_for("tpf")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
    finally:
        server.stop()

    again, url_again = embedded_default_database(embedded_data_dir)
    try:
        assert url_again == url
        with psycopg.connect(url_again) as conn:
            assert conn.execute("SELECT to_regclass('kept') IS NOT NULL").fetchone() == (True,)
    finally:
        again.stop()


def test_start_after_an_unnoticed_crash_recovers(embedded: EmbeddedPostgres) -> None:
    """A postmaster killed behind our back (OOM killer, kill -9 by hand) is reaped, its
    orphaned backends are waited for, and the same instance starts again with the data."""
    embedded.start()
    with psycopg.connect(embedded.url) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (1)")
    crashed = embedded.pid
    assert crashed is not None
    os.kill(crashed, signal.SIGKILL)
    wait_until_sync(lambda: embedded.exit_code() == -signal.SIGKILL, what="postmaster reaped")

    embedded.start()

    assert embedded.pid not in (None, crashed)
    with psycopg.connect(embedded.url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(1,)]


def test_lock_files_of_a_dead_unreaped_postmaster_do_not_block_a_new_server(
    embedded_data_dir: Path,
) -> None:
    """A dead postmaster nobody reaped stays a zombie, and postgres takes the pid in its lock
    files as alive; a new server on the data dir removes those stale files and starts."""
    first = EmbeddedPostgres(embedded_data_dir, fast=True)
    first.start()
    try:
        zombie = first.pid
        assert zombie is not None
        pid_file = first.pgdata_dir / "postmaster.pid"
        os.kill(zombie, signal.SIGKILL)
        # Not reaped (nobody waits on it): the pid stays taken, by a zombie.
        wait_until_sync(
            lambda: Path(f"/proc/{zombie}/stat").read_text().rpartition(")")[2].split()[0] == "Z",
            what="the killed postmaster is a zombie",
        )
        assert pid_file.read_text().split()[0] == str(zombie)

        second = EmbeddedPostgres(embedded_data_dir, fast=True)
        second.start()
        try:
            assert second.pid != zombie
            assert pid_file.read_text().split()[0] == str(second.pid)
            with psycopg.connect(second.url) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            second.stop()
    finally:
        first.stop()


def test_the_lock_files_of_a_running_server_are_kept(embedded_data_dir: Path) -> None:
    with EmbeddedPostgres(embedded_data_dir, fast=True) as running:
        pid_file = running.pgdata_dir / "postmaster.pid"

        assert not remove_if_stale(pid_file, wait_s=0.1)

        assert pid_file.read_text().split()[0] == str(running.pid)
