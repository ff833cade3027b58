"""The peer benchmarks (PgQueuer, Procrastinate, DBOS, Celery) run from a peers directory.

`make bench` takes the directory from `PEERS_DIR`. It must hold the peers' drivers
(`bench_pgqueuer.py`, `bench_procrastinate.py`, `bench_dbos.py`, `bench_celery.py` with their
`*_app.py` and `common.py`), `requirements.txt` and `setup.sh`. The drivers write their logs
and virtual env next to themselves, so they run from a work copy (`.build/bench-peers` by
default, ignored by git); the peers directory itself is only read. `setup.sh` (run when the
copy has no `.venv`, or its requirements changed) creates that env and readies the servers.

Each driver takes its server from `BENCH_PG_HOST` / `BENCH_PG_PORT` / `BENCH_PG_USER` (and
libpq's `PGPASSWORD`), which are set from the same `--database-url` our runs use, and Redis
from `BENCH_REDIS` (Celery only). The configurations are those the peers' own `run_all.sh`
uses (chosen there by a sweep on this machine kind).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

REQUIRED = ("common.py", "requirements.txt", "setup.sh")
_SKIPPED = {".venv", "logs", "results", "__pycache__"}


@dataclass(frozen=True)
class PeerRun:
    """One peer driver invocation: `script args --n N [--rate R] --out FILE`."""

    name: str  # as the peers' run_all.sh names its results: [paced_]<system>_<workload>
    system: str
    workload: str  # w1 | w2 | w3
    paced: bool
    script: str
    args: tuple[str, ...]


def _runs() -> dict[str, PeerRun]:
    configs = {
        "pgqueuer": ("bench_pgqueuer.py", ("--workers", "1", "--batch-size", "10"), "w1 w2"),
        "procrastinate": (
            "bench_procrastinate.py",
            ("--workers", "2", "--concurrency", "10"),
            "w1 w2",
        ),
        "dbos-inproc": ("bench_dbos.py", ("--mode", "inproc"), "w1 w2 w3"),
        "dbos-queue": ("bench_dbos.py", ("--mode", "queue"), "w1 w2"),
        "celery": ("bench_celery.py", ("--concurrency", "2"), "w1 w2"),
    }
    runs: dict[str, PeerRun] = {}
    for system, (script, args, workloads) in configs.items():
        for workload in workloads.split():
            for paced in (False, True) if workload != "w3" else (False,):
                name = f"{'paced_' if paced else ''}{system}_{workload}"
                runs[name] = PeerRun(
                    name, system, workload, paced, script, (*args, "--workload", workload)
                )
    return runs


PEER_RUNS = _runs()
# What the ratio table needs (PgQueuer W1/W2, DBOS W3, Procrastinate paced W1) and the closest
# durable peers for context; `all` adds Celery (not durable as the peers run it), DBOS's queue
# mode and the other paced runs.
DEFAULT_PEER_RUNS = (
    "pgqueuer_w1",
    "pgqueuer_w2",
    "procrastinate_w1",
    "procrastinate_w2",
    "dbos-inproc_w1",
    "dbos-inproc_w2",
    "dbos-inproc_w3",
    "paced_procrastinate_w1",
    "paced_procrastinate_w2",
    "paced_dbos-inproc_w1",
    "paced_dbos-inproc_w2",
)


def select(text: str) -> list[PeerRun]:
    if text.strip() == "all":
        return list(PEER_RUNS.values())
    names = [n.strip() for n in text.split(",") if n.strip()] if text else DEFAULT_PEER_RUNS
    unknown = [n for n in names if n not in PEER_RUNS]
    if unknown:
        raise SystemExit(f"unknown peer runs {unknown}: choose from {', '.join(PEER_RUNS)}")
    return [PEER_RUNS[n] for n in names]


def check_dir(peers_dir: Path, runs: list[PeerRun]) -> None:
    needed = {*REQUIRED, *(r.script for r in runs)}
    missing = sorted(n for n in needed if not (peers_dir / n).is_file())
    if missing:
        raise SystemExit(f"peers directory {peers_dir} lacks {', '.join(missing)} (PEERS_DIR)")


def sync_work_copy(peers_dir: Path, work: Path) -> None:
    """Copy the peers' files into `work` (their .venv, logs and results there are kept)."""
    work.mkdir(parents=True, exist_ok=True)
    for source in peers_dir.iterdir():
        if source.name in _SKIPPED:
            continue
        target = work / source.name
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
            shutil.copymode(source, target)
    for path in work.rglob("*"):  # the peers directory may be read-only
        path.chmod(path.stat().st_mode | 0o200)


def ensure_setup(work: Path, log: Path) -> None:
    """Run the peers' setup.sh unless the work copy's .venv matches its requirements.txt."""
    digest = hashlib.sha256((work / "requirements.txt").read_bytes()).hexdigest()
    stamp = work / ".venv" / ".requirements-sha256"
    ready = (work / ".venv" / "bin" / "python").exists() and stamp.exists()
    if ready and stamp.read_text().strip() == digest:
        return
    with log.open("ab") as out:
        subprocess.run(["bash", "setup.sh"], cwd=work, stdout=out, stderr=out, check=True)
    stamp.write_text(digest + "\n")


def environment(database_url: str, redis_url: str | None) -> dict[str, str]:
    """The peers' server variables from our database URL (same server, role and password)."""
    parts = urlsplit(database_url)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT")
    }
    env["BENCH_PG_HOST"] = parts.hostname or "127.0.0.1"
    env["BENCH_PG_PORT"] = str(parts.port or 5432)
    env["BENCH_PG_USER"] = unquote(parts.username or "postgres")
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    if redis_url:
        env["BENCH_REDIS"] = redis_url
    return env


def command(work: Path, run: PeerRun, n: int, rate: float, out: Path) -> list[str]:
    return [
        str(work / ".venv" / "bin" / "python"),
        run.script,
        *run.args,
        "--n",
        str(n),
        *(["--rate", f"{rate:g}"] if run.paced else []),
        "--out",
        str(out),
    ]
