"""Coordinator benchmark: W1 (1 step) and W2 (3 steps) through real processes, like `make dev`.

    .venv/bin/python -m bench.run_coordinator_bench                    # W1 N=5000 + paced W1 N=500
    .venv/bin/python -m bench.run_coordinator_bench --runs w1,w2,paced-w1,paced-w2
    .venv/bin/python -m bench.run_coordinator_bench --database-url postgresql://...

Starts an embedded Postgres (durable settings: fsync on, as the peers ran) unless
`--database-url` is given, then the registry and the coordinator as processes, registers and
activates a 1-step release (W1) and a 3-step release (W2) with a healthy `local` worker. Each
run starts a fake dispatcher process (tpf_testkit/fake_dispatcher.py: batch claims and
completions, instant steps), warms up, then submits N executions from this process (one
client, `--concurrency` gRPC submits in flight, or paced at `--rate`/s) and measures:

* throughput: N / (last SUCCEEDED seen by the dispatcher - first submit),
* latency: time.time() before the submit call -> time.time() when the dispatcher's CompleteWork
  answer said SUCCEEDED (same host clock), nearest-rank percentiles,
* Postgres: write transactions (COMMIT records in the run's WAL, counted with pg_waldump;
  exact, embedded Postgres only), xids assigned (the peers' method; it also counts the
  subtransaction of each savepoint that writes), `pg_stat_database.xact_commit` of the
  coordinator's database (every commit, read-only ones included), WAL bytes,
* CPU: the whole machine from /proc/stat (as the peers), and per process.

Writes `<out-dir>/coordinator-<stamp>.json` and `.md`; the markdown puts our figures next to
the peers' reference figures (`--peers-summary`) as ratios. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
from tpf_testkit.coordinator_client import coordinator_client
from tpf_testkit.demo_release import RESTAURANT_STEPS, sha256_digest, write_jar
from tpf_testkit.fake_dispatcher import FakeDispatcher, Submitted, submit_all
from tpf_testkit.registry_client import ADMIN, auth_env, declare_local_host, registry_client
from tpf_testkit.restaurant import order_envelope

from bench.profiling import Profiler, start_profiler, stop_profiler
from bench.wal_access import postmaster_pid, server_wal
from tpf.coordinator.v1 import execution_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wpb
from tpf_devserver.supervisor import ServiceSpec, Supervisor
from tpf_store.embedded import EmbeddedPostgres
from tpf_store.embedded._system_user import postgres_bin_dir
from tpf_worker.contract_hash import catalog_fingerprint, sealed_contract

REPO = Path(__file__).resolve().parents[1]
TENANT = "bench"
COORDINATOR_DB = "tpf_bench"
REGISTRY_DB = "tpf_bench_registry"
DEFAULT_PEERS_SUMMARY = Path("/work/shared/bench-peers/reference/summary.md")
WORKLOAD_STEPS = {"w1": 1, "w2": 3}
DEFAULT_N = {"w1": 5000, "w2": 2000}
WARMUP = 20


# -- releases --------------------------------------------------------------------------------


def bench_contract(pipeline_id: str, steps: int) -> dict[str, Any]:
    """A TPF contract of `steps` internal steps, hashed the way TPF's build hashes it.

    Step 0 takes the restaurant order (so the restaurant payload is admitted); the others are
    the restaurant's second step, re-indexed. Same keys and hash rule as
    `tpf_testkit.demo_release.tpf_contract`.
    """
    chosen = [copy.deepcopy(RESTAURANT_STEPS[0 if i == 0 else 1]) for i in range(steps)]
    for index, step in enumerate(chosen):
        step["index"] = index
        step["authoredName"] = f"Bench Step {index}"
    body: dict[str, Any] = {
        "schemaVersion": 1,
        "pipelineId": pipeline_id,
        "platform": "COMPUTE",
        "transport": "REST",
        "pluginHost": False,
        "runtimeLayout": "MONOLITH",
        "steps": chosen,
        "canonicalTypes": {},
        "canonicalCatalogFingerprint": catalog_fingerprint({}),
        "capabilities": {
            "localTransitionExecution": True,
            "transitionWorkerProtocols": ["local", "rest", "grpc", "sqs"],
        },
    }
    return sealed_contract(body)


def pipeline_of(workload: str) -> str:
    return f"org.pipelineframework.bench.{workload}"


def write_release(directory: Path, workload: str) -> tuple[Path, dict[str, Any]]:
    """Jar + descriptor of the workload's release; returns the descriptor path and itself."""
    pipeline_id = pipeline_of(workload)
    contract = bench_contract(pipeline_id, WORKLOAD_STEPS[workload])
    jar = write_jar(directory / f"bench-{workload}.jar", contract)
    descriptor = {
        "schemaVersion": 1,
        "pipelineId": pipeline_id,
        "contractVersion": contract["contractVersion"],
        "releaseVersion": contract["contractVersion"],
        "artifacts": [
            {
                "artifactId": f"bench-{workload}",
                "kind": "jar",
                "uri": str(jar),
                "digest": sha256_digest(jar),
                "stepIds": [s["authoredName"] for s in contract["steps"]],
                "capabilities": ["local-transition-execution"],
            }
        ],
    }
    path = directory / f"pipeline-release-{workload}.json"
    path.write_text(json.dumps(descriptor, indent=2))
    return path, descriptor


async def register_workloads(registry_target: str, directory: Path) -> None:
    async with registry_client(registry_target) as client:
        for workload in WORKLOAD_STEPS:
            path, descriptor = write_release(directory, workload)
            pipeline_id = pipeline_of(workload)
            version = descriptor["releaseVersion"]
            await client.releases.RegisterRelease(
                rpb.RegisterReleaseRequest(
                    tenant_id=TENANT, pipeline_id=pipeline_id, release_descriptor_path=str(path)
                )
            )
            await client.releases.ActivateRelease(
                rpb.ActivateReleaseRequest(
                    tenant_id=TENANT, pipeline_id=pipeline_id, release_version=version
                )
            )
            await client.workers.RegisterWorker(
                wpb.RegisterWorkerRequest(
                    tenant_id=TENANT,
                    pipeline_id=pipeline_id,
                    worker_id=f"bench-{workload}-local",
                    contract_version=descriptor["contractVersion"],
                    release_version=version,
                    protocol="local",
                )
            )
            await declare_local_host(
                client, pipeline_id=pipeline_id, contract_version=descriptor["contractVersion"]
            )


def submissions(workload: str, tag: str, n: int) -> list[epb.SubmitExecutionRequest]:
    return [
        epb.SubmitExecutionRequest(
            tenant_id=TENANT,
            pipeline_id=pipeline_of(workload),
            input_shape=execution_pb2.INPUT_SHAPE_UNI,
            input_payload=order_envelope(),
            idempotency_key=f"{tag}-{i}",
        )
        for i in range(n)
    ]


# -- measuring -------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100), as the peers compute it."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[k]


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (the peers' CpuMeter)."""
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, irq, softirq, steal = (
            int(x) for x in stat.readline().split()[1:9]
        )
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal


def process_cpu(pids: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    """CPU seconds (user + system) of each named group of processes, by pid; every process
    not in a group is in "other:<name>" (a busy neighbour skews machine-wide figures)."""
    named = {pid: name for name, group in pids.items() for pid in group}
    out: dict[str, dict[int, float]] = {name: {} for name in pids}
    for process in psutil.process_iter(["pid", "name", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is None:
            continue
        name = named.get(process.info["pid"], f"other:{process.info['name']}")
        out.setdefault(name, {})[process.info["pid"]] = times.user + times.system
    return out


def cpu_delta(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """CPU seconds per group over the window (a process born in it counts whole)."""
    previous = {pid: cpu for group in before.values() for pid, cpu in group.items()}
    deltas = {
        name: round(sum(cpu - previous.get(pid, 0.0) for pid, cpu in group.items()), 2)
        for name, group in after.items()
    }
    return {k: v for k, v in sorted(deltas.items(), key=lambda kv: -kv[1]) if v >= 0.05}


@dataclass
class PgCounters:
    at: float
    xact_commit: int
    xact_rollback: int
    next_xid: int
    insert_lsn: str
    flush_lsn: str


class PgMeter:
    """Counters of the coordinator's database and of the cluster's WAL."""

    SQL = """
    SELECT xact_commit, xact_rollback, pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
           pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text
    FROM pg_stat_database WHERE datname = %s
    """

    def __init__(
        self, maintenance_url: str, wal_dir: Path | None, waldump: Path | None = None
    ) -> None:
        self._url = maintenance_url
        self._wal_dir = wal_dir
        # The embedded server's by default; an existing server's matches its major version.
        self.waldump = waldump if waldump is not None else postgres_bin_dir() / "pg_waldump"

    def read(self) -> PgCounters:
        with psycopg.connect(self._url, autocommit=True) as conn:
            row = conn.execute(self.SQL, (COORDINATOR_DB,)).fetchone()
        assert row is not None
        return PgCounters(time.time(), int(row[0]), int(row[1]), int(row[2]), row[3], row[4])

    def vacuum_and_checkpoint(self) -> None:
        with psycopg.connect(db_url(self._url, COORDINATOR_DB), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                conn.execute("CHECKPOINT")  # superuser or pg_checkpoint only

    def wal_bytes(self, start: str, end: str) -> int:
        with psycopg.connect(self._url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_wal_lsn_diff(%s, %s)", (end, start)).fetchone()
        return int(row[0]) if row else 0

    def commit_records(self, start: str, end: str) -> int | None:
        """Top-level transactions that wrote: COMMIT records in the WAL between two positions."""
        if self._wal_dir is None:
            return None
        result = subprocess.run(
            [
                str(self.waldump),
                "-p",
                str(self._wal_dir),
                "-s",
                start,
                "-e",
                end,
                "-r",
                "Transaction",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 and "desc: COMMIT" not in result.stdout:
            print(f"[bench] pg_waldump failed: {result.stderr.strip()}", file=sys.stderr)
            return None
        return sum(1 for line in result.stdout.splitlines() if "desc: COMMIT" in line)


# -- the dispatcher process ------------------------------------------------------------------


async def dispatcher_main(args: argparse.Namespace) -> None:
    """Run a FakeDispatcher until `--expect` executions SUCCEEDED; print milestones."""
    dispatcher = FakeDispatcher(
        [args.target],
        steps=args.steps,
        dispatcher_id=f"bench-dispatcher-{os.getpid()}",
        token=ADMIN,
        batch=args.batch,
        max_in_flight=args.max_in_flight,
        wait_ms=args.wait_ms,
        continue_claim=args.continue_claim,
        complete_concurrency=args.complete_concurrency,
        use_request_ids=not args.no_request_ids,
    )
    async with dispatcher:
        print("ready", flush=True)
        for milestone in [*sorted(set(args.report_at)), args.expect]:
            await dispatcher.wait_for_successes(milestone)
            print(f"reached {milestone}", flush=True)
    stats = dispatcher.stats
    await asyncio.to_thread(
        Path(args.out).write_text,
        json.dumps(
            {
                "succeeded_at": stats.succeeded_at,
                "stats": {
                    "claim_calls": stats.claim_calls,
                    "claimed": stats.claimed,
                    "continued": stats.continued,
                    "complete_calls": stats.complete_calls,
                    "accepted": stats.accepted,
                    "rejected": dict(stats.rejected),
                    "rpc_errors": dict(stats.rpc_errors),
                    "renew_calls": stats.renew_calls,
                },
            }
        ),
    )
    print("done", flush=True)


class DispatcherProcess:
    """The fake dispatcher in a process of its own, as a real dispatcher runs."""

    def __init__(self, process: asyncio.subprocess.Process, out: Path) -> None:
        self.process = process
        self.out = out

    @classmethod
    async def start(
        cls, args: argparse.Namespace, target: str, steps: int, expect: int, out: Path, log: Path
    ) -> DispatcherProcess:
        command = [
            sys.executable,
            "-m",
            "bench.run_coordinator_bench",
            "dispatcher",
            "--target",
            target,
            "--steps",
            str(steps),
            "--expect",
            str(expect),
            "--report-at",
            str(WARMUP),
            "--out",
            str(out),
            "--batch",
            str(args.batch),
            "--max-in-flight",
            str(args.max_in_flight),
            "--complete-concurrency",
            str(args.complete_concurrency),
            *(["--continue-claim"] if args.continue_claim else []),
            *(["--no-request-ids"] if args.no_request_ids else []),
        ]
        with log.open("ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                *command, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr
            )
        found = cls(process, out)
        await found.expect_line("ready", timeout_s=60)
        return found

    async def expect_line(self, wanted: str, *, timeout_s: float) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"dispatcher did not print {wanted!r} in {timeout_s}s")
            line = await asyncio.wait_for(self.process.stdout.readline(), remaining)
            if not line:
                raise RuntimeError(
                    f"dispatcher exited ({self.process.returncode}) before {wanted!r}"
                )
            if line.decode().strip() == wanted:
                return

    def pid(self) -> int:
        return self.process.pid

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


# -- one run ---------------------------------------------------------------------------------


@dataclass
class RunSpec:
    workload: str
    paced: bool
    n: int

    @property
    def name(self) -> str:
        return f"{'paced-' if self.paced else ''}{self.workload}"


@dataclass
class Environment:
    coordinator_target: str
    pg: PgMeter
    pids: dict[str, list[int]]
    postgres_pid: int | None
    work_dir: Path
    logs: Path
    notes: list[str] = field(default_factory=list)

    def current_pids(self, dispatcher_pid: int) -> dict[str, list[int]]:
        pids = {**self.pids, "dispatcher": [dispatcher_pid], "client": [os.getpid()]}
        if self.postgres_pid is not None:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(self.postgres_pid)
                pids["postgres"] = [root.pid, *(c.pid for c in root.children(recursive=True))]
        return pids


async def run_one(args: argparse.Namespace, env: Environment, spec: RunSpec) -> dict[str, Any]:
    steps = WORKLOAD_STEPS[spec.workload]
    stamp = f"{spec.name}-{int(time.time())}"
    out = env.work_dir / f"dispatcher-{stamp}.json"
    dispatcher = await DispatcherProcess.start(
        args,
        env.coordinator_target,
        steps,
        WARMUP + spec.n,
        out,
        env.logs / f"dispatcher-{stamp}.log",
    )
    try:
        async with coordinator_client(env.coordinator_target) as client:
            await submit_all(client.executions, submissions(spec.workload, f"{stamp}-warm", WARMUP))
            await dispatcher.expect_line(f"reached {WARMUP}", timeout_s=60)
            requests = submissions(spec.workload, stamp, spec.n)
            # Start every run from a vacuumed, checkpointed database, so no run pays for the
            # previous run's garbage (autovacuum) or dirty pages (checkpoint).
            await asyncio.to_thread(env.pg.vacuum_and_checkpoint)
            # Let every backend publish its statistics (idle backends do so within 10 s), then
            # measure the background commit rate (sweeper, idle long-polls) for 5 s.
            await asyncio.sleep(args.stats_settle_s)
            idle_start = env.pg.read()
            await asyncio.sleep(args.idle_sample_s)
            before = env.pg.read()
            idle_rate = (before.xact_commit - idle_start.xact_commit) / (before.at - idle_start.at)
            pids = env.current_pids(dispatcher.pid())
            cpu_before = process_cpu(pids)
            busy0, total0 = machine_cpu()
            profiler = await start_coordinator_profiler(args, env, stamp)
            if spec.paced:
                submitted = await submit_all(
                    client.executions, requests, concurrency=8, rate_per_s=args.rate
                )
            else:
                submitted = await submit_all(
                    client.executions, requests, concurrency=args.concurrency
                )
            await dispatcher.expect_line(
                f"reached {WARMUP + spec.n}", timeout_s=max(300.0, spec.n / 20)
            )
            observed_done = time.time()
            busy1, total1 = machine_cpu()
            cpu_after = process_cpu(env.current_pids(dispatcher.pid()))
            after = env.pg.read()
            hotspots = await stop_profiler(profiler) if profiler is not None else None
        await dispatcher.expect_line("done", timeout_s=30)
        await dispatcher.process.wait()
    finally:
        await dispatcher.stop()
    await asyncio.sleep(args.stats_settle_s)
    settled = env.pg.read()
    report = json.loads(out.read_text())
    return summarize(
        spec=spec,
        steps=steps,
        args=args,
        submitted=submitted,
        succeeded_at={k: float(v) for k, v in report["succeeded_at"].items()},
        observed_done=observed_done,
        cpu={
            "machine_busy_s": (busy1 - busy0) / os.sysconf("SC_CLK_TCK"),
            "machine_util_pct": 100.0 * (busy1 - busy0) / max(1, total1 - total0),
            "processes_s": cpu_delta(cpu_before, cpu_after),
        },
        pg={
            "before": before,
            "after": after,
            "settled": settled,
            "idle_xacts_per_s": idle_rate,
            "commit_records": env.pg.commit_records(before.insert_lsn, after.flush_lsn),
            "wal_bytes": env.pg.wal_bytes(before.insert_lsn, after.flush_lsn),
        },
        dispatcher_stats=report["stats"],
        hotspots=hotspots,
    )


async def start_coordinator_profiler(
    args: argparse.Namespace, env: Environment, stamp: str
) -> Profiler | None:
    """py-spy on the coordinator for the timed window (`--py-spy PATH`)."""
    if not args.py_spy:
        return None
    return await start_profiler(
        args.py_spy, env.pids["coordinator"][0], env.logs / f"py-spy-{stamp}.txt"
    )


def summarize(
    *,
    spec: RunSpec,
    steps: int,
    args: argparse.Namespace,
    submitted: list[Submitted],
    succeeded_at: dict[str, float],
    observed_done: float,
    cpu: dict[str, Any],
    pg: dict[str, Any],
    dispatcher_stats: dict[str, Any],
    hotspots: dict[str, Any] | None = None,
) -> dict[str, Any]:
    n = len(submitted)
    latencies = [
        succeeded_at[s.execution_id] - s.submitted_at
        for s in submitted
        if s.execution_id in succeeded_at
    ]
    first_submit = min(s.submitted_at for s in submitted)
    last_answer = max(s.answered_at for s in submitted)
    last_done = max(
        succeeded_at[s.execution_id] for s in submitted if s.execution_id in succeeded_at
    )
    makespan = last_done - first_submit
    before: PgCounters = pg["before"]
    after: PgCounters = pg["after"]
    settled: PgCounters = pg["settled"]
    raw_commits = settled.xact_commit - before.xact_commit
    idle_commits = pg["idle_xacts_per_s"] * max(0.0, settled.at - after.at)
    commit_records = pg["commit_records"]
    return {
        "run": spec.name,
        "workload": spec.workload,
        "steps": steps,
        "paced": spec.paced,
        "n": n,
        "completed": len(latencies),
        "config": {
            "submit_concurrency": 8 if spec.paced else args.concurrency,
            "rate_per_s": args.rate if spec.paced else None,
            "dispatcher_batch": args.batch,
            "dispatcher_max_in_flight": args.max_in_flight,
            "complete_concurrency": args.complete_concurrency,
            "continue_claim": args.continue_claim,
            "request_ids": not args.no_request_ids,
        },
        "submit_rate_per_s": n / (last_answer - first_submit),
        "makespan_s": makespan,
        "throughput_per_s": len(latencies) / makespan,
        "latency_ms": {
            q: pct(latencies, p) * 1000
            for q, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
        },
        "cpu": {
            **cpu,
            "machine_cpu_ms_per_execution": 1000 * cpu["machine_busy_s"] / n,
            "window_s": observed_done - first_submit,
        },
        "pg": {
            "write_xacts_per_execution": None if commit_records is None else commit_records / n,
            "commit_records": commit_records,
            "xids_per_execution": (after.next_xid - before.next_xid) / n,
            "xact_commit_per_execution_raw": raw_commits / n,
            "xact_commit_per_execution": (raw_commits - idle_commits) / n,
            "idle_xacts_per_s": pg["idle_xacts_per_s"],
            "xact_rollback": settled.xact_rollback - before.xact_rollback,
            "wal_bytes_per_execution": pg["wal_bytes"] / n,
        },
        "dispatcher": dispatcher_stats,
        "coordinator_hotspots": hotspots,
    }


# -- the peers -------------------------------------------------------------------------------


def _number(cell: str) -> float | None:
    match = re.match(r"\s*([0-9][0-9,]*(?:\.[0-9]+)?)", cell)
    return float(match.group(1).replace(",", "")) if match else None


def parse_peer_tables(path: Path) -> dict[str, list[dict[str, str]]]:
    """Tables of the peers' summary.md by section title ("W1 single-step", ...)."""
    tables: dict[str, list[dict[str, str]]] = {}
    title = ""
    header: list[str] | None = None
    for line in path.read_text().splitlines():
        if line.startswith("### "):
            title, header = line[4:].strip(), None
            continue
        if not line.startswith("|"):
            header = None if not line.strip() else header
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            tables.setdefault(title, [])
        elif not all(set(c) <= set("-: ") for c in cells):
            tables[title].append(dict(zip(header, cells, strict=False)))
    return tables


def peer_rows(tables: dict[str, list[dict[str, str]]], prefix: str) -> list[dict[str, str]]:
    for title, rows in tables.items():
        if title.startswith(prefix):
            return rows
    return []


def _column(row: dict[str, str], prefix: str) -> str:
    """The cell of the first column whose name starts with `prefix`."""
    return next((v for k, v in row.items() if k.startswith(prefix)), "")


def _ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "n/a"
    return f"{ours / theirs:.2f}"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def markdown(results: list[dict[str, Any]], peers: Path | None, machine: dict[str, Any]) -> str:
    lines = [
        f"Measured {machine['date']} on {machine['host']} ({machine['cpus']} CPUs, "
        f"{machine['memory_gib']} GiB, {machine['os']}, Python {machine['python']}, "
        f"PostgreSQL {machine['postgres']}).",
        "",
        "### Our runs",
        "",
        "| run | n | submit rate /s | throughput /s | p50 ms | p90 ms | p99 ms | max ms "
        "| machine CPU ms / exec | PG write xacts / exec (WAL commits) | xids / exec "
        "| xact_commit / exec (all, idle-corrected) | WAL bytes / exec |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lat = r["latency_ms"]
        pg = r["pg"]
        lines.append(
            f"| {r['run']} | {r['n']} | {r['submit_rate_per_s']:,.0f} "
            f"| {r['throughput_per_s']:,.0f} | {lat['p50']:.1f} | {lat['p90']:.1f} "
            f"| {lat['p99']:.1f} | {lat['max']:.1f} "
            f"| {r['cpu']['machine_cpu_ms_per_execution']:.2f} "
            f"| {_fmt(pg['write_xacts_per_execution'], 2)} | {pg['xids_per_execution']:.2f} "
            f"| {pg['xact_commit_per_execution']:.2f} "
            f"({pg['xact_commit_per_execution_raw']:.2f} raw) "
            f"| {pg['wal_bytes_per_execution']:,.0f} |"
        )
    lines += ["", "CPU seconds by process over each timed window (`other:*` is not ours):", ""]
    for r in results:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu"]["processes_s"].items())
        lines.append(
            f"* {r['run']}: machine {r['cpu']['machine_busy_s']:.2f} s busy "
            f"({r['cpu']['machine_util_pct']:.0f}% of {r['cpu']['window_s']:.1f} s); {parts}"
        )
    if peers is None or not peers.exists():
        return "\n".join(lines) + "\n"
    tables = parse_peer_tables(peers)
    sections = [
        ("w1", False, "W1 single-step", "W1 saturating"),
        ("w2", False, "W2 three-step", "W2 saturating"),
    ]
    for workload, paced, prefix, label in sections:
        ours = next((r for r in results if r["workload"] == workload and r["paced"] == paced), None)
        rows = peer_rows(tables, prefix)
        if ours is None or not rows:
            continue
        lines += [
            "",
            f"### {label}: ours / peer (throughput: >1 is faster; latency, CPU, writes: <1 is "
            "less)",
            "",
            "| peer (config) | throughput /s | ratio | p50 ms | ratio | p99 ms | ratio "
            "| CPU ms / exec | ratio | PG write xacts / exec | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| **ours** | {ours['throughput_per_s']:,.0f} | | {ours['latency_ms']['p50']:.1f} | "
            f"| {ours['latency_ms']['p99']:.1f} | "
            f"| {ours['cpu']['machine_cpu_ms_per_execution']:.2f} | "
            f"| {_fmt(ours['pg']['write_xacts_per_execution'], 2)} | |",
        ]
        for row in rows:
            tput = _number(_column(row, "throughput /s"))
            p50 = _number(row.get("p50 ms", ""))
            p99 = _number(row.get("p99 ms", ""))
            cpu = _number(row.get("machine CPU ms / exec", ""))
            xacts = _number(row.get("PG write xacts / exec", ""))
            lines.append(
                f"| {row.get('system')} ({row.get('config')}) | {_fmt(tput, 0)} "
                f"| {_ratio(ours['throughput_per_s'], tput)} | {_fmt(p50)} "
                f"| {_ratio(ours['latency_ms']['p50'], p50)} | {_fmt(p99)} "
                f"| {_ratio(ours['latency_ms']['p99'], p99)} | {_fmt(cpu, 2)} "
                f"| {_ratio(ours['cpu']['machine_cpu_ms_per_execution'], cpu)} "
                f"| {_fmt(xacts, 2)} | {_ratio(ours['pg']['write_xacts_per_execution'], xacts)} |"
            )
    paced_rows = peer_rows(tables, "Paced latency")
    for workload in WORKLOAD_STEPS:
        ours = next((r for r in results if r["workload"] == workload and r["paced"]), None)
        rows = [row for row in paced_rows if row.get("workload", "").lower() == workload]
        if ours is None or not rows:
            continue
        lat = ours["latency_ms"]
        lines += [
            "",
            f"### Paced {workload.upper()} ({ours['config']['rate_per_s']:g}/s): ours / peer "
            "(<1 is lower latency / less CPU)",
            "",
            "| peer (config) | p50 ms | ratio | p90 ms | ratio | p99 ms | ratio | max ms | ratio "
            "| CPU ms / exec | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| **ours** | {lat['p50']:.1f} | | {lat['p90']:.1f} | | {lat['p99']:.1f} | "
            f"| {lat['max']:.1f} | | {ours['cpu']['machine_cpu_ms_per_execution']:.2f} | |",
        ]
        for row in rows:
            values = [_number(row.get(k, "")) for k in ("p50 ms", "p90 ms", "p99 ms", "max ms")]
            cpu = _number(row.get("machine CPU ms / execution", ""))
            cells = " | ".join(
                f"{_fmt(v)} | {_ratio(lat[q], v)}"
                for q, v in zip(("p50", "p90", "p99", "max"), values, strict=True)
            )
            lines.append(
                f"| {row.get('system')} ({row.get('config')}) | {cells} | {_fmt(cpu, 2)} "
                f"| {_ratio(ours['cpu']['machine_cpu_ms_per_execution'], cpu)} |"
            )
    return "\n".join(lines) + "\n"


# -- the driver ------------------------------------------------------------------------------


def machine_facts(postgres_version: str) -> dict[str, Any]:
    os_name = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.node()} ({cpu_model or platform.machine()})",
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30),
        "os": f"{os_name}, Linux {platform.release()}",
        "python": platform.python_version(),
        "postgres": postgres_version,
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def parse_runs(text: str, args: argparse.Namespace) -> list[RunSpec]:
    specs = []
    for name in (part.strip() for part in text.split(",") if part.strip()):
        paced = name.startswith("paced-")
        workload = name.removeprefix("paced-")
        if workload not in WORKLOAD_STEPS:
            raise SystemExit(f"unknown run {name!r}: use w1, w2, paced-w1, paced-w2")
        n = args.paced_n if paced else (args.n or DEFAULT_N[workload])
        specs.append(RunSpec(workload, paced, n))
    return specs


async def driver_main(args: argparse.Namespace) -> None:
    runs = parse_runs(args.runs, args)
    work_dir = Path(tempfile.mkdtemp(prefix="tpf-bench-"))
    logs = work_dir / "logs"
    logs.mkdir()
    print(f"[bench] work dir {work_dir}", file=sys.stderr)
    embedded: EmbeddedPostgres | None = None
    supervisor = Supervisor(log_dir=logs)
    try:
        waldump: Path | None = None
        if args.database_url:
            maintenance_url = args.database_url
            # The exact write count needs the server's WAL: on this host and readable.
            wal_dir, waldump = server_wal(maintenance_url) or (None, None)
        else:
            embedded = EmbeddedPostgres(work_dir / "postgres", fast=args.fast_postgres)
            await asyncio.to_thread(embedded.start)
            maintenance_url = embedded.url
            wal_dir = embedded.pgdata_dir / "pg_wal"
        with psycopg.connect(maintenance_url, autocommit=True) as conn:
            for name in (COORDINATOR_DB, REGISTRY_DB):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
            version_row = conn.execute("SHOW server_version").fetchone()
            postgres_version = str(version_row[0]) if version_row else "?"

        common = {
            **auth_env(),
            "TPF_LOG_LEVEL": args.log_level,
            "TPF_GRPC_HOST": "127.0.0.1",
        }
        registry_port, coordinator_port = free_port(), free_port()
        registry = await asyncio.to_thread(
            supervisor.start,
            ServiceSpec(
                name="registry",
                module="tpf_registry",
                port=registry_port,
                env={
                    **common,
                    "TPF_DATABASE_URL": db_url(maintenance_url, REGISTRY_DB),
                    "TPF_DATA_DIR": str(work_dir / "registry"),
                    "TPF_REGISTRY_ARTIFACT_ROOTS": str(work_dir),
                },
            ),
        )
        coordinator = await asyncio.to_thread(
            supervisor.start,
            ServiceSpec(
                name="coordinator",
                module="tpf_coordinator",
                port=coordinator_port,
                env={
                    **common,
                    "TPF_DATABASE_URL": db_url(maintenance_url, COORDINATOR_DB),
                    "TPF_DATA_DIR": str(work_dir / "coordinator"),
                    "TPF_REGISTRY_TARGET": registry.spec.target,
                    "TPF_REGISTRY_TOKEN": ADMIN,
                },
            ),
        )
        await register_workloads(registry.spec.target, work_dir / "releases")
        env = Environment(
            coordinator_target=coordinator.spec.target,
            pg=PgMeter(maintenance_url, wal_dir, waldump),
            pids={"coordinator": [coordinator.process.pid], "registry": [registry.process.pid]},
            postgres_pid=(
                embedded.pid
                if embedded is not None
                else (postmaster_pid(wal_dir) if wal_dir is not None else None)
            ),
            work_dir=work_dir,
            logs=logs,
        )
        machine = machine_facts(postgres_version)
        results = []
        for spec in runs:
            print(f"[bench] run {spec.name} n={spec.n}", file=sys.stderr)
            result = await run_one(args, env, spec)
            results.append(result)
            print(
                f"[bench] {spec.name}: {result['throughput_per_s']:.0f}/s, "
                f"p50 {result['latency_ms']['p50']:.1f} ms, "
                f"p99 {result['latency_ms']['p99']:.1f} ms, "
                f"write xacts/exec {result['pg']['write_xacts_per_execution']}",
                file=sys.stderr,
            )
        document: dict[str, Any] = {
            "machine": machine,
            "postgres": "embedded" if embedded else "external",
        }
        document["runs"] = results
        peers = Path(args.peers_summary) if args.peers_summary else None
        print(await asyncio.to_thread(write_outputs, Path(args.out_dir), document, peers))
    finally:
        await asyncio.to_thread(supervisor.stop_all)
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)


def write_outputs(out_dir: Path, document: dict[str, Any], peers: Path | None) -> str:
    """Write the JSON and the markdown of a session; return the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (out_dir / f"coordinator-{stamp}.json").write_text(
        json.dumps(document, indent=2, default=lambda o: o.__dict__)
    )
    text = markdown(document["runs"], peers, document["machine"])
    (out_dir / f"coordinator-{stamp}.md").write_text(text)
    return text


def db_url(maintenance_url: str, dbname: str) -> str:
    """The same server and credentials, database `dbname`."""
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(maintenance_url)
    return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def median_of(results: list[Any]) -> Any:
    """Field by field: the median of numbers, the first of anything else."""
    first = results[0]
    if isinstance(first, bool) or first is None or isinstance(first, str):
        return first
    if isinstance(first, int):
        return round(_median([float(r) for r in results if r is not None]))
    if isinstance(first, float):
        return _median([float(r) for r in results if r is not None])
    if isinstance(first, dict):
        return {k: median_of([r[k] for r in results if k in r]) for k in first}
    return first


def summarize_files(paths: list[Path], peers: Path | None) -> str:
    """Medians (and ranges) over several result files of the same runs."""
    documents = [json.loads(path.read_text()) for path in paths]
    names = [r["run"] for r in documents[0]["runs"]]
    merged = []
    ranges = ["", "Ranges over the repetitions [min-max]:", ""]
    for name in names:
        runs = [r for d in documents for r in d["runs"] if r["run"] == name]
        merged.append(median_of(runs))
        tput = [r["throughput_per_s"] for r in runs]
        p50 = [r["latency_ms"]["p50"] for r in runs]
        p99 = [r["latency_ms"]["p99"] for r in runs]
        cpu = [r["cpu"]["machine_cpu_ms_per_execution"] for r in runs]
        ranges.append(
            f"* {name} ({len(runs)} runs): throughput {min(tput):,.0f}-{max(tput):,.0f}/s, "
            f"p50 {min(p50):.1f}-{max(p50):.1f} ms, p99 {min(p99):.1f}-{max(p99):.1f} ms, "
            f"CPU {min(cpu):.2f}-{max(cpu):.2f} ms/exec"
        )
    text = markdown(merged, peers, documents[0]["machine"])
    head, _, tail = text.partition("\n\n### Our runs")
    note = f"Medians of {len(documents)} repetitions ({', '.join(p.name for p in paths)})."
    return f"{head}\n{note}\n\n### Our runs{tail}" + "\n".join(ranges) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run_coordinator_bench")
    sub = parser.add_subparsers(dest="command")
    summary = sub.add_parser("summarize", help="medians over result files of the same runs")
    summary.add_argument("files", nargs="+", type=Path)
    summary.add_argument("--peers-summary", default=str(DEFAULT_PEERS_SUMMARY))
    disp = sub.add_parser("dispatcher", help="(internal) the fake dispatcher process")
    disp.add_argument("--target", required=True)
    disp.add_argument("--steps", type=int, required=True)
    disp.add_argument("--expect", type=int, required=True)
    disp.add_argument("--report-at", type=int, action="append", default=[])
    disp.add_argument("--out", required=True)
    disp.add_argument("--wait-ms", type=int, default=1000)
    for p in (parser, disp):
        p.add_argument("--batch", type=int, default=100, help="claim/complete batch size")
        p.add_argument("--max-in-flight", type=int, default=1000)
        p.add_argument("--complete-concurrency", type=int, default=2)
        p.add_argument("--continue-claim", action="store_true", help="W2: keep the claim")
        p.add_argument("--no-request-ids", action="store_true", help="omit AIP-155 request ids")
    parser.add_argument("--runs", default="w1,paced-w1", help="w1,w2,paced-w1,paced-w2")
    parser.add_argument("--n", type=int, default=None, help="N of saturating runs")
    parser.add_argument("--paced-n", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="paced submissions per second")
    parser.add_argument("--concurrency", type=int, default=32, help="submits in flight")
    parser.add_argument("--database-url", default=None, help="an existing server (maintenance DB)")
    parser.add_argument("--fast-postgres", action="store_true", help="fsync=off (not like peers)")
    parser.add_argument("--log-level", default="WARNING", help="TPF_LOG_LEVEL of the services")
    parser.add_argument("--stats-settle-s", type=float, default=11.0)
    parser.add_argument("--idle-sample-s", type=float, default=5.0)
    parser.add_argument("--peers-summary", default=str(DEFAULT_PEERS_SUMMARY))
    parser.add_argument("--out-dir", default=str(REPO / "bench" / "results"))
    parser.add_argument("--py-spy", default=None, help="py-spy binary: profile the coordinator")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    args = parser.parse_args(argv)
    if args.command == "dispatcher":
        asyncio.run(dispatcher_main(args))
    elif args.command == "summarize":
        peers = Path(args.peers_summary) if args.peers_summary else None
        print(summarize_files(args.files, peers))
    else:
        asyncio.run(driver_main(args))


if __name__ == "__main__":
    main()
