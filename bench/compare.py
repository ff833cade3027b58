"""`make bench`: our benchmarks and the peers' in one sitting, against one Postgres server.

    .venv/bin/python -m bench.compare --database-url postgresql://bench@127.0.0.1:5432/postgres \\
        --peers-dir ../peers                        # REPS=3 of everything, then the table
    .venv/bin/python -m bench.compare --quick ...   # small N, one repetition: checks it works

Each repetition runs, one after another (never two at once, so they do not share the cores):

1. `bench.run_dispatcher_bench` with our runs (W1, W2, W3 over the local and gRPC workers,
   paced W1/W2, and in the first repetition W1 next to the bulk-loaded backlog), the
   coordinator serving /metrics for the claim latency;
2. `bench.run_coordinator_bench --runs w1`: the coordinator alone under a fake dispatcher
   (reported as "coordinator only, fake dispatcher");
3. the peers' drivers (bench/peers.py) from their own virtual env, same server.

Then it prints the ratio table (bench/compare_report.py) and writes
`<out-dir>/compare-<stamp>.md` and `.json` (every result document); the raw results and logs
stay in `<out-dir>/compare-<stamp>/`. Nothing is asserted: a missed target is a row, not an
exit code; a run that fails is reported and the others go on (exit code 1 at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from bench import compare_report, peers
from bench.run_coordinator_bench import machine_facts

REPO = Path(__file__).resolve().parents[1]
OUR_RUNS = (
    "w1-local,w1-grpc,w1-local-batched,w2-local,w2-grpc,w2-local-batched,w3-local,w3-grpc,"
    "paced-w1-local,paced-w2-local"
)
FULL = {"w1_n": 5000, "w2_n": 2000, "w3_n": 1000, "paced_n": 500, "reps": 3}
QUICK = {"w1_n": 300, "w2_n": 200, "w3_n": 100, "paced_n": 100, "reps": 1}
QUICK_SCALE = {"scale_parked": 20_000, "scale_dead_letters": 2_000}
_WORK_DIR = re.compile(r"^\[bench\] work dir (\S+)$", re.MULTILINE)


class Stop(Exception):
    """SIGTERM: stop the child in progress the way it cleans up, then leave."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Stop


@contextlib.contextmanager
def child(
    command: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None, ours: bool
) -> Iterator[subprocess.Popen[bytes]]:
    """Run one bench process, its output in `log`. Interrupted, it gets SIGINT (ours: their
    `finally` stops the services they started) or SIGTERM (the peers' drivers stop their
    workers on it), then SIGKILL after 60 s."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=out, env=env)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT if ours else signal.SIGTERM)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def run_child(
    what: str, command: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None, ours: bool
) -> bool:
    started = time.monotonic()
    print(f"[compare] {time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)
    with child(command, cwd=cwd, log=log, env=env, ours=ours) as process:
        code = process.wait()
    if ours:
        collect_work_dir(log, keep_logs=code != 0)
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print(f"[compare] {what} failed (exit {code}); {log}:", file=sys.stderr)
        print("\n".join(f"    {line}" for line in tail), file=sys.stderr)
        return False
    print(f"[compare] {what}: done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return True


def collect_work_dir(log: Path, *, keep_logs: bool) -> None:
    """Our benches run with --keep: after a failure their services' logs are kept beside the
    bench's own log; the work dir is removed either way."""
    found = _WORK_DIR.findall(log.read_text(errors="replace"))
    if not found:
        return
    work = Path(found[-1])
    if keep_logs and (work / "logs").is_dir():
        shutil.copytree(work / "logs", log.with_suffix(".services"), dirs_exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)


def newest_json(directory: Path, prefix: str) -> dict[str, Any] | None:
    found = sorted(directory.glob(f"{prefix}-*.json"))
    return json.loads(found[-1].read_text()) if found else None


def our_command(args: argparse.Namespace, rep: int, out: Path) -> list[str]:
    runs = args.runs
    scale = args.scale and rep == 1  # the bulk load is long: once per sitting
    command = [
        sys.executable,
        "-m",
        "bench.run_dispatcher_bench",
        "--runs",
        runs,
        "--database-url",
        args.database_url,
        "--out-dir",
        str(out),
        "--peers-summary",
        "",
        "--claim-latency",
        "--keep",
        "--w1-n",
        str(args.w1_n),
        "--w2-n",
        str(args.w2_n),
        "--w3-n",
        str(args.w3_n),
        "--paced-n",
        str(args.paced_n),
        "--rate",
        f"{args.rate:g}",
    ]
    if scale:
        command += [
            "--scale",
            "--scale-parked",
            str(args.scale_parked),
            "--scale-dead-letters",
            str(args.scale_dead_letters),
        ]
    return command + settle_options(args)


def coordinator_command(args: argparse.Namespace, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.run_coordinator_bench",
        "--runs",
        "w1",
        "--n",
        str(args.w1_n),
        "--database-url",
        args.database_url,
        "--out-dir",
        str(out),
        "--peers-summary",
        "",
        "--keep",
        *settle_options(args),
    ]


def settle_options(args: argparse.Namespace) -> list[str]:
    if not args.quick:
        return []
    return ["--stats-settle-s", "2", "--idle-sample-s", "1"]


def peer_n(args: argparse.Namespace, run: peers.PeerRun) -> int:
    if run.paced:
        return int(args.paced_n)
    return int({"w1": args.w1_n, "w2": args.w2_n, "w3": args.w3_n}[run.workload])


def check_server(url: str) -> str:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as error:
        raise SystemExit(f"cannot reach --database-url / DATABASE_URL {url}: {error}") from error
    return str(row[0]) if row else "?"


def session(args: argparse.Namespace) -> int:
    selected = [] if args.no_peers else peers.select(args.peer_runs)
    version = check_server(args.database_url)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(args.out_dir)
    raw = out_dir / f"compare-{stamp}"
    raw.mkdir(parents=True)
    work = Path(args.peers_work).resolve()
    peer_env = peers.environment(args.database_url, args.redis_url)
    if selected:
        peers_dir = Path(args.peers_dir).resolve()
        peers.check_dir(peers_dir, selected)
        peers.sync_work_copy(peers_dir, work)
        print(f"[compare] peers from {peers_dir}, run in {work}", file=sys.stderr)
        peers.ensure_setup(work, raw / "peers-setup.log")
    ours: dict[str, list[dict[str, Any]]] = {}
    documents: list[dict[str, Any]] = []
    coordinator_only: list[dict[str, Any]] = []
    peer_results: dict[str, list[dict[str, Any]]] = {}
    failures: list[str] = []
    started = time.monotonic()
    for rep in range(1, args.reps + 1):
        rep_dir = raw / f"rep{rep}"
        rep_dir.mkdir()
        ok = run_child(
            f"rep {rep}/{args.reps}: our runs ({args.runs})",
            our_command(args, rep, rep_dir / "ours"),
            cwd=REPO,
            log=rep_dir / "ours.log",
            env=None,
            ours=True,
        )
        document = newest_json(rep_dir / "ours", "dispatcher") if ok else None
        if document is None:
            failures.append(f"rep {rep}: our runs (see {rep_dir / 'ours.log'})")
        else:
            documents.append(document)
            for run in document["runs"]:
                ours.setdefault(run["run"], []).append(run)
        if not args.no_coordinator_only:
            ok = run_child(
                f"rep {rep}/{args.reps}: coordinator only, fake dispatcher (w1)",
                coordinator_command(args, rep_dir / "coordinator"),
                cwd=REPO,
                log=rep_dir / "coordinator.log",
                env=None,
                ours=True,
            )
            coordinator_doc = newest_json(rep_dir / "coordinator", "coordinator") if ok else None
            if coordinator_doc is None:
                failures.append(f"rep {rep}: coordinator only (see {rep_dir / 'coordinator.log'})")
            else:
                coordinator_only += coordinator_doc["runs"]
        for run in selected:
            out = rep_dir / "peers" / f"{run.name}.json"
            out.parent.mkdir(exist_ok=True)
            ok = run_child(
                f"rep {rep}/{args.reps}: peer {run.name}",
                peers.command(work, run, peer_n(args, run), args.rate, out),
                cwd=work,
                log=rep_dir / "peers.log",
                env=peer_env,
                ours=False,
            )
            if ok and out.exists():
                peer_results.setdefault(run.name, []).append(json.loads(out.read_text()))
            else:
                failures.append(f"rep {rep}: peer {run.name} (see {rep_dir / 'peers.log'})")
    machine = machine_facts(version)
    header = (
        f"Same sitting, {machine['date']}, {machine['host']} ({machine['cpus']} CPUs, "
        f"{machine['memory_gib']} GiB, {machine['os']}, Python {machine['python']}); "
        f"every run against PostgreSQL {version} at {_redacted(args.database_url)}; "
        f"{args.reps} repetition(s){' (QUICK: small N, not for figures)' if args.quick else ''}, "
        f"N: W1 {args.w1_n}, W2 {args.w2_n}, W3 {args.w3_n}, paced {args.paced_n} at "
        f"{args.rate:g}/s; {time.monotonic() - started:.0f} s in all."
    )
    rows = compare_report.target_rows(ours, peer_results, coordinator_only)
    text = compare_report.markdown(
        header=header,
        ours=ours,
        peers=peer_results,
        coordinator_only=coordinator_only,
        rows=rows,
        failures=failures,
    )
    (out_dir / f"compare-{stamp}.md").write_text(text)
    (out_dir / f"compare-{stamp}.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "options": {k: v for k, v in vars(args).items() if k != "database_url"},
                "targets": rows,
                "ours": documents,
                "coordinator_only": coordinator_only,
                "peers": peer_results,
                "failures": failures,
            },
            indent=2,
        )
    )
    print(text)
    print(f"[compare] wrote {out_dir / f'compare-{stamp}.md'} and .json", file=sys.stderr)
    return 1 if failures else 0


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare")
    parser.add_argument("--database-url", required=True, help="maintenance DB of the server")
    parser.add_argument("--peers-dir", default="../shared/bench-peers", help="the peers' drivers")
    parser.add_argument(
        "--peers-work", default=str(REPO / ".build" / "bench-peers"), help="their work copy"
    )
    parser.add_argument("--redis-url", default=None, help="BENCH_REDIS for Celery (peers' own)")
    parser.add_argument("--quick", action="store_true", help="small N, 1 repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (3; quick 1)")
    parser.add_argument("--runs", default=OUR_RUNS, help="our runs (run_dispatcher_bench)")
    parser.add_argument(
        "--peer-runs",
        default="",
        help=f"peer runs, comma-separated, or all (default {','.join(peers.DEFAULT_PEER_RUNS)})",
    )
    parser.add_argument("--no-peers", action="store_true", help="our runs only")
    parser.add_argument("--no-coordinator-only", action="store_true", help="skip the fake W1")
    parser.add_argument("--no-scale", dest="scale", action="store_false", help="skip --scale")
    for name in ("w1_n", "w2_n", "w3_n", "paced_n"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=None)
    parser.add_argument("--rate", type=float, default=50.0, help="paced submissions per second")
    parser.add_argument("--scale-parked", type=int, default=None, help="1,000,000; quick 20,000")
    parser.add_argument("--scale-dead-letters", type=int, default=None, help="100,000; quick 2,000")
    parser.add_argument("--out-dir", default=str(REPO / "bench" / "results"))
    args = parser.parse_args(argv)
    defaults = {**(QUICK if args.quick else FULL)}
    defaults.update(QUICK_SCALE if args.quick else {"scale_parked": 1_000_000})
    defaults.setdefault("scale_dead_letters", 100_000)
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        sys.exit(session(args))
    except (KeyboardInterrupt, Stop):
        print("[compare] interrupted; the runs in progress were stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
