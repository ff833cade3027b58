"""Dispatcher benchmark: W1 (one step), W2 (three durable steps), paced W1/W2 (a fixed rate) and
W3 (1,000 executions parked on an await, then completed) through the REAL dispatcher, over the
local and the gRPC worker transports; `--scale` repeats W1 next to a million parked executions.

    .venv/bin/python -m bench.run_dispatcher_bench              # every run below but the scaled
    .venv/bin/python -m bench.run_dispatcher_bench --runs w3-grpc --w3-n 1000
    .venv/bin/python -m bench.run_dispatcher_bench --runs w1-local --scale --scale-parked 20000

Runs: `w1-local`, `w1-grpc`, `w2-local`, `w2-grpc`, `w3-local`, `w3-grpc`, `paced-w1-local`,
`paced-w2-local` (and `paced-*-grpc`), and any W1/W2 run with `-scaled` appended: that run goes
after the others, once the database holds `--scale-parked` parked executions and
`--scale-dead-letters` dead letters (bench/scale_load.py); `--scale` adds `w1-local` and
`w1-local-scaled`.

Starts an embedded Postgres (durable settings: fsync on, as the peers ran), the registry and the
coordinator as processes (as `bench.run_coordinator_bench` does), builds the pipelines of
`bench/pipelines.py` with the tpf_worker SDK and registers and activates their releases with
their policies. Each run then starts its own worker side, as `make dev` wires it:

* `*-local`: `python -m tpf_dispatcher` hosting the pipeline in-process (`TPF_LOCAL_PIPELINES`,
  registering its `local` worker itself);
* `*-grpc`: `python -m tpf_worker serve --transport grpc` (registers itself in the registry) and a
  dispatcher hosting nothing, so the only reachable worker is the gRPC one (the run records the
  history actors of its step completions to show it).

W1/W2: N executions submitted from this process (`--concurrency` in flight; paced runs
`--paced-concurrency` in flight at `--rate` per second); throughput = N / (last SUCCEEDED -
first submit); latency = submit -> SUCCEEDED, nearest-rank percentiles. W3: N executions submitted
and parked at WAITING_EXTERNAL (time to park all = last parked - first submit), a 2 s quiet
period, then every interaction completed with InteractionService.CompleteInteraction
(`--complete-concurrency` in flight); throughput = N / (last SUCCEEDED - first completion call);
latency = completion call -> SUCCEEDED.

Completion (and parking) times are read afterwards from the coordinator's own store
(`executions.updated_at_ms` of the SUCCEEDED / WAITING_EXTERNAL row, epoch ms, same host clock),
as the peers read theirs; while a run is in flight this process only polls one `count(*)` every
100 ms on a connection of its own, so nothing is added to the services' work. Postgres write
transactions are the COMMIT records in the run's WAL whose transaction wrote to the
coordinator's database (pg_waldump; exact). With `--claim-latency` (implied by scaled runs)
the coordinator serves /metrics and each run reports its claim latency from the coordinator's
histogram, read before and after the timed window. Writes `<out-dir>/dispatcher-<stamp>.json`
and `.md` with ratios against the peers' reference figures. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psutil
import psycopg
from google.protobuf import json_format
from tpf_testkit.coordinator_client import CoordinatorClient, coordinator_client
from tpf_testkit.fake_dispatcher import submit_all
from tpf_testkit.registry_client import ADMIN, auth_env, registry_client
from tpf_testkit.restaurant import envelope

from bench import scale_load
from bench.claim_latency import ClaimHistogram, ClaimLatency
from bench.metrics_scrape import MetricsScrape
from bench.pipelines import EVENT_TYPE, ITEM_TYPE, PIPELINE_REFS, PIPELINES
from bench.profiling import Profiler, start_profiler, stop_profiler
from bench.run_coordinator_bench import (
    COORDINATOR_DB,
    DEFAULT_PEERS_SUMMARY,
    REGISTRY_DB,
    TENANT,
    PgCounters,
    PgMeter,
    _fmt,
    _number,
    _ratio,
    cpu_delta,
    db_url,
    free_port,
    machine_cpu,
    machine_facts,
    parse_peer_tables,
    pct,
    peer_rows,
    process_cpu,
)
from bench.start_line import wait_at_start_line
from bench.tracing_export import TracingExport
from bench.wal_access import postmaster_pid, server_wal
from tpf.coordinator.v1 import execution_pb2, interaction_service_pb2_grpc
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf_devserver.supervisor import ServiceSpec, Supervisor, grpc_listening
from tpf_store.embedded import EmbeddedPostgres
from tpf_worker.release import build_release

REPO = Path(__file__).resolve().parents[1]
WARMUP = 20
WORKER_SECRET = "bench-worker-shared-secret"
DEFAULT_RUNS = "w1-local,w1-grpc,w2-local,w2-grpc,w3-local,w3-grpc,paced-w1-local,paced-w2-local"
SCALE_RUNS = ("w1-local", "w1-local-scaled")
TRANSPORTS = ("local", "grpc")
_RUN_NAME = re.compile(r"^(paced-)?(w1|w2|w3)-(local|grpc)(-batched)?(-scaled)?$")
POLL_S = 0.1
_ENDED = ("FAILED", "DLQ", "CANCELLED")
QUIET_S = 2.0  # between parking and completing, as the DBOS W3 run (nothing runs meanwhile)
# DESIGN §14 throughput targets of the saturating workloads measured here.
TARGETS = {"w1": 1500.0, "w2": 600.0, "w3": 1000.0}
# A scaled run's claim latency and throughput should stay within this of the empty database's.
SCALE_TOLERANCE = 0.20


# -- Postgres: exact write transactions of one database ---------------------------------------


_TX = re.compile(r"\btx:\s+(\d+),")
_REL = re.compile(r"\brel \d+/(\d+)/\d+")


class DatabasePgMeter(PgMeter):
    """PgMeter that attributes each WAL COMMIT record to the database its transaction wrote.

    The WAL is the cluster's: with the real dispatcher, the registry (heartbeats, worker
    registrations) commits into the same WAL, so a plain COMMIT count would include it.
    """

    def __init__(
        self, maintenance_url: str, wal_dir: Path | None, waldump: Path | None = None
    ) -> None:
        super().__init__(maintenance_url, wal_dir, waldump)
        self._maintenance_url = maintenance_url
        self._wal = wal_dir

    def database_oid(self, name: str) -> int:
        with psycopg.connect(self._maintenance_url, autocommit=True) as conn:
            row = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()
        assert row is not None
        return int(row[0])

    def commits_by_database(self, start: str, end: str) -> dict[int, int] | None:
        """COMMIT records between two WAL positions, by the database oid their xid wrote to."""
        if self._wal is None:
            return None
        result = subprocess.run(
            [str(self.waldump), "-p", str(self._wal), "-s", start, "-e", end],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 and "desc: COMMIT" not in result.stdout:
            print(f"[bench] pg_waldump failed: {result.stderr.strip()}", file=sys.stderr)
            return None
        database_of: dict[str, int] = {}
        committed: list[str] = []
        for line in result.stdout.splitlines():
            tx = _TX.search(line)
            if tx is None or tx.group(1) == "0":
                continue
            if "rmgr: Transaction" in line and "desc: COMMIT" in line:
                committed.append(tx.group(1))
                continue
            rel = _REL.search(line)
            if rel is not None and rel.group(1) != "0":  # 0: a shared catalog
                database_of.setdefault(tx.group(1), int(rel.group(1)))
        counts: dict[int, int] = {}
        for xid in committed:
            oid = database_of.get(xid, 0)
            counts[oid] = counts.get(oid, 0) + 1
        return counts


@dataclass
class Window:
    """Counters at the start and end of one measured phase."""

    before: PgCounters
    after: PgCounters
    busy_s: float
    util_pct: float
    processes_s: dict[str, float]


class Poller:
    """One connection of our own to the coordinator's database: `count(*)` of our executions in
    a status, every POLL_S. Its read-only transactions are counted, to take them out of
    `xact_commit`."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.queries = 0

    async def wait_for(
        self, ids: Sequence[str], status: str, *, timeout_s: float, what: str
    ) -> float:
        """Wait until every execution of `ids` is in `status`; return when it was seen."""
        deadline = time.monotonic() + timeout_s
        async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
            while True:
                self.queries += 1
                cursor = await conn.execute(
                    "SELECT status, count(*), min(error_code), min(error_message) "
                    "FROM executions WHERE tenant_id = %s AND execution_id = ANY(%s) "
                    "GROUP BY status",
                    (TENANT, list(ids)),
                )
                rows = {str(r[0]): r for r in await cursor.fetchall()}
                if status in rows and int(rows[status][1]) >= len(ids):
                    return time.time()
                ended = [rows[s] for s in _ENDED if s in rows and s != status]
                counts = {k: int(v[1]) for k, v in rows.items()}
                if ended:
                    raise RuntimeError(f"{what}: {counts}; e.g. {ended[0][2]}: {ended[0][3]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{what}: waiting for {status}, found {counts}")
                await asyncio.sleep(POLL_S)

    async def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
            self.queries += 1
            cursor = await conn.execute(sql, params)
            return list(await cursor.fetchall())

    async def updated_at(self, ids: Sequence[str], status: str) -> dict[str, float]:
        """`updated_at_ms` (as epoch seconds) of the executions in `status`."""
        rows = await self.query(
            "SELECT execution_id, updated_at_ms FROM executions WHERE tenant_id = %s "
            "AND execution_id = ANY(%s) AND status = %s",
            (TENANT, list(ids), status),
        )
        return {str(r[0]): int(r[1]) / 1000.0 for r in rows}


# -- the suite ---------------------------------------------------------------------------------


@dataclass
class Released:
    pipeline_id: str
    release_version: str


@dataclass
class Suite:
    args: argparse.Namespace
    coordinator_target: str
    registry_target: str
    pg: DatabasePgMeter
    coordinator_oid: int
    coordinator_url: str
    pids: dict[str, list[int]]
    postgres_pid: int | None
    work_dir: Path
    logs: Path
    metrics: MetricsScrape
    releases: dict[str, Released] = field(default_factory=dict)
    tracing: TracingExport = field(default_factory=TracingExport.disabled)
    claims: ClaimLatency | None = None
    # What the scaled runs run next to (bench/scale_load.py), once loaded.
    scale: dict[str, Any] | None = None
    # The coordinator the dispatchers call (--coordinators 2: a second replica, so that
    # submissions and the work protocol are served by two processes).
    work_target: str = ""

    def current_pids(self, extra: dict[str, list[int]]) -> dict[str, list[int]]:
        pids = {**self.pids, **extra, "client": [os.getpid()]}
        if self.postgres_pid is not None:
            try:
                root = psutil.Process(self.postgres_pid)
                pids["postgres"] = [root.pid, *(c.pid for c in root.children(recursive=True))]
            except psutil.Error:
                pass
        return pids


async def register_releases(suite: Suite, names: Sequence[str]) -> None:
    """Build, register (with the release's policy) and activate each pipeline's release."""
    async with registry_client(suite.registry_target) as client:
        for name in names:
            built = await asyncio.to_thread(
                build_release, PIPELINES[name], suite.work_dir / "releases" / name
            )
            request = rpb.RegisterReleaseRequest(
                tenant_id=TENANT,
                pipeline_id=built.pipeline_id,
                release_descriptor_path=str(built.descriptor_path),
            )
            json_format.Parse(built.policy_path.read_text(), request.policy)
            await client.releases.RegisterRelease(request)
            await client.releases.ActivateRelease(
                rpb.ActivateReleaseRequest(
                    tenant_id=TENANT,
                    pipeline_id=built.pipeline_id,
                    release_version=built.release_version,
                    reason="dispatcher benchmark",
                )
            )
            suite.releases[name] = Released(built.pipeline_id, built.release_version)


def start_worker_side(
    suite: Suite, supervisor: Supervisor, pipelines: Sequence[str], transport: str, stamp: str
) -> dict[str, list[int]]:
    """The dispatcher (and, for grpc, the worker) of one run, claiming only `pipelines`;
    returns their pids. A gRPC worker serves one pipeline."""
    args = suite.args
    if transport == "grpc" and len(pipelines) != 1:
        raise ValueError("a gRPC worker serves one pipeline")
    pipeline = pipelines[0]
    common = {
        **auth_env(),
        "TPF_LOG_LEVEL": args.log_level,
        "TPF_GRPC_HOST": "127.0.0.1",
        "TPF_WORKER_SHARED_SECRET": WORKER_SECRET,
        **suite.tracing.env(),
    }
    pids: dict[str, list[int]] = {}
    if transport == "grpc":
        port = free_port()
        worker = supervisor.start(
            ServiceSpec(
                name=f"worker-{stamp}",
                module="tpf_worker",
                port=port,
                kind="grpc-worker",
                args=[
                    "serve",
                    "--pipeline",
                    PIPELINE_REFS[pipeline],
                    "--transport",
                    "grpc",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--registry-target",
                    suite.registry_target,
                    "--registry-token-env",
                    "TPF_REGISTRY_TOKEN",
                    "--tenant",
                    TENANT,
                    "--worker-id",
                    f"bench-{pipeline}-grpc-{stamp}",
                    "--advertise",
                    f"127.0.0.1:{port}",
                    "--log-level",
                    args.log_level,
                ],
                env={**common, "TPF_REGISTRY_TOKEN": ADMIN},
                ready=grpc_listening(f"127.0.0.1:{port}"),
            )
        )
        pids["worker"] = [worker.process.pid]
    tuning = {
        "TPF_MAX_IN_FLIGHT": args.max_in_flight,
        "TPF_CLAIM_BATCH_SIZE": args.claim_batch,
        "TPF_COMPLETE_BATCH_SIZE": args.complete_batch,
    }
    dispatcher = supervisor.start(
        ServiceSpec(
            name=f"dispatcher-{stamp}",
            module="tpf_dispatcher",
            port=free_port(),
            env={
                **common,
                "TPF_COORDINATOR_TARGET": suite.work_target or suite.coordinator_target,
                "TPF_COORDINATOR_TOKEN": ADMIN,
                "TPF_REGISTRY_TARGET": suite.registry_target,
                "TPF_REGISTRY_TOKEN": ADMIN,
                "TPF_DISPATCHER_ID": f"bench-dispatcher-{stamp}",
                "TPF_PIPELINE_IDS": ",".join(suite.releases[p].pipeline_id for p in pipelines),
                # grpc: host nothing, so the gRPC worker is the only reachable one.
                "TPF_LOCAL_PIPELINES": (
                    ",".join(PIPELINE_REFS[p] for p in pipelines) if transport == "local" else ""
                ),
                "TPF_LOCAL_WORKER_TENANTS": TENANT if transport == "local" else "",
                **{k: str(v) for k, v in tuning.items() if v is not None},
                **suite.metrics.env(f"dispatcher-{stamp}"),
            },
        )
    )
    pids["dispatcher"] = [dispatcher.process.pid]
    return pids


def submissions(suite: Suite, pipeline: str, tag: str, n: int) -> list[epb.SubmitExecutionRequest]:
    return [
        epb.SubmitExecutionRequest(
            tenant_id=TENANT,
            pipeline_id=suite.releases[pipeline].pipeline_id,
            input_shape=execution_pb2.INPUT_SHAPE_UNI,
            input_payload=envelope(ITEM_TYPE, {"n": i, "tag": tag}),
            idempotency_key=f"{tag}-{i}",
        )
        for i in range(n)
    ]


@dataclass
class Completed:
    """One CompleteInteraction call: its execution and when the call started / answered."""

    execution_id: str
    called_at: float
    answered_at: float


async def complete_all(
    client: CoordinatorClient, interactions: Sequence[tuple[str, str]], concurrency: int
) -> list[Completed]:
    """Complete every (interaction_id, execution_id), `concurrency` calls in flight."""
    stub = interaction_service_pb2_grpc.InteractionServiceStub(client.channel)
    pending = iter(interactions)
    done: list[Completed] = []
    payload = envelope(EVENT_TYPE, {"event": "go"})

    async def one(interaction_id: str, execution_id: str) -> Completed:
        called_at = time.time()
        pause_s = 0.02
        while True:
            try:
                await stub.CompleteInteraction(
                    ipb.CompleteInteractionRequest(
                        tenant_id=TENANT,
                        interaction_id=interaction_id,
                        response_payload=payload,
                        actor="bench",
                    ),
                    timeout=10.0,
                )
            except grpc.aio.AioRpcError as error:
                # A retry is safe: a second completion answers `duplicate`.
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED):
                    raise
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, 0.5)
                continue
            return Completed(execution_id, called_at, time.time())

    async def worker() -> None:
        for interaction_id, execution_id in pending:
            done.append(await one(interaction_id, execution_id))

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return done


async def waiting_interactions(poller: Poller, ids: Sequence[str]) -> list[tuple[str, str]]:
    """(interaction_id, execution_id) of the pending interactions of `ids`, as an operator's
    sender would know them (read outside every timed window)."""
    rows = await poller.query(
        "SELECT interaction_id, execution_id FROM interactions WHERE tenant_id = %s "
        "AND execution_id = ANY(%s) AND status IN ('WAITING', 'DISPATCHING', 'DISPATCHED') "
        "ORDER BY created_at_ms",
        (TENANT, list(ids)),
    )
    if len(rows) != len(ids):
        raise RuntimeError(f"{len(rows)} pending interactions for {len(ids)} parked executions")
    return [(str(r[0]), str(r[1])) for r in rows]


# -- one run -----------------------------------------------------------------------------------


@dataclass
class RunSpec:
    workload: str  # w1 | w2 | w3
    transport: str  # local | grpc
    n: int
    paced: bool = False  # submissions at a fixed rate (W1/W2)
    scaled: bool = False  # next to the bulk-loaded backlog (W1/W2)
    # The client's submissions in flight travel together in SubmitExecutions calls
    # (CoalescingSubmitter) instead of one SubmitExecution call each (W1/W2, saturating).
    batched: bool = False

    @property
    def name(self) -> str:
        paced = "paced-" if self.paced else ""
        batched = "-batched" if self.batched else ""
        scaled = "-scaled" if self.scaled else ""
        return f"{paced}{self.workload}-{self.transport}{batched}{scaled}"

    @property
    def base_name(self) -> str:
        """The same run on the empty database (what a scaled run is compared with)."""
        return self.name.removesuffix("-scaled")


class Meter:
    """Machine and per-process CPU plus Postgres counters around one phase."""

    def __init__(self, suite: Suite, extra_pids: dict[str, list[int]]) -> None:
        self._suite = suite
        self._extra = extra_pids
        self._before: PgCounters | None = None
        self._cpu: dict[str, dict[int, float]] = {}
        self._busy = (0, 0)

    def start(self, before: PgCounters | None = None) -> None:
        self._before = before if before is not None else self._suite.pg.read()
        self._cpu = process_cpu(self._suite.current_pids(self._extra))
        self._busy = machine_cpu()

    def stop(self) -> Window:
        busy1, total1 = machine_cpu()
        cpu_after = process_cpu(self._suite.current_pids(self._extra))
        after = self._suite.pg.read()
        assert self._before is not None
        busy0, total0 = self._busy
        return Window(
            before=self._before,
            after=after,
            busy_s=(busy1 - busy0) / os.sysconf("SC_CLK_TCK"),
            util_pct=100.0 * (busy1 - busy0) / max(1, total1 - total0),
            processes_s=cpu_delta(self._cpu, cpu_after),
        )

    def processes_so_far(self) -> dict[str, float]:
        """Per-process CPU seconds from start() until now: read after a quiet tail, it also
        holds work a phase left queued (spans a batch processor exports after the window)."""
        return cpu_delta(self._cpu, process_cpu(self._suite.current_pids(self._extra)))


async def settle_and_sample_idle(suite: Suite) -> tuple[PgCounters, float]:
    """Vacuum + checkpoint, let statistics settle, measure the idle commit rate; return the
    counters at the start of the timed window and that rate."""
    args = suite.args
    await asyncio.to_thread(suite.pg.vacuum_and_checkpoint)
    await asyncio.sleep(args.stats_settle_s)
    idle_start = suite.pg.read()
    await asyncio.sleep(args.idle_sample_s)
    before = suite.pg.read()
    rate = (before.xact_commit - idle_start.xact_commit) / (before.at - idle_start.at)
    return before, rate


def pg_figures(suite: Suite, window: Window, n: int) -> dict[str, Any]:
    """Exact write transactions (coordinator's database, and all databases) and WAL bytes."""
    by_db = suite.pg.commits_by_database(window.before.insert_lsn, window.after.flush_lsn)
    ours = None if by_db is None else by_db.get(suite.coordinator_oid, 0)
    everything = None if by_db is None else sum(by_db.values())
    return {
        "write_xacts": ours,
        "write_xacts_per_execution": None if ours is None else ours / n,
        "all_db_write_xacts_per_execution": None if everything is None else everything / n,
        "xids_per_execution": (window.after.next_xid - window.before.next_xid) / n,
        "wal_bytes_per_execution": suite.pg.wal_bytes(
            window.before.insert_lsn, window.after.flush_lsn
        )
        / n,
    }


def xact_commit_figures(
    before: PgCounters, after: PgCounters, settled: PgCounters, idle_rate: float, polls: int, n: int
) -> dict[str, Any]:
    raw = settled.xact_commit - before.xact_commit - polls
    idle = idle_rate * max(0.0, settled.at - after.at)
    return {
        "xact_commit_per_execution_raw": raw / n,
        "xact_commit_per_execution": (raw - idle) / n,
        "idle_xacts_per_s": idle_rate,
        "bench_poll_queries": polls,
        "xact_rollback": settled.xact_rollback - before.xact_rollback,
    }


def latency_ms(values: list[float]) -> dict[str, float]:
    return {
        q: pct(values, p) * 1000 for q, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
    }


def cpu_figures(window: Window, n: int, start: float, end: float) -> dict[str, Any]:
    return {
        "machine_busy_s": window.busy_s,
        "machine_util_pct": window.util_pct,
        "processes_s": window.processes_s,
        "machine_cpu_ms_per_execution": 1000 * window.busy_s / n,
        "window_s": end - start,
    }


async def step_actors(poller: Poller, ids: Sequence[str]) -> dict[str, int]:
    """Who recorded the step completions of the run (the worker ids): shows which worker ran."""
    rows = await poller.query(
        "SELECT actor, count(*) FROM execution_history WHERE tenant_id = %s "
        "AND execution_id = ANY(%s) AND event IN ('STEP_COMPLETED', 'AWAIT_REQUESTED', "
        "'SUCCEEDED') GROUP BY actor",
        (TENANT, list(ids)),
    )
    return {str(r[0]): int(r[1]) for r in rows}


async def claims_now(suite: Suite) -> ClaimHistogram | None:
    return None if suite.claims is None else await suite.claims.read()


async def claim_figures(suite: Suite, before: ClaimHistogram | None) -> dict[str, Any] | None:
    """The coordinator's claims since `before` (None without --claim-latency)."""
    after = await claims_now(suite)
    if before is None or after is None:
        return None
    return after.minus(before).figures()


async def run_steps(
    suite: Suite, client: CoordinatorClient, spec: RunSpec, pids: dict[str, list[int]], stamp: str
) -> dict[str, Any]:
    """W1 or W2, saturating or paced: submit N, wait until every one SUCCEEDED."""
    args = suite.args
    pipeline = spec.workload
    poller = Poller(suite.coordinator_url)
    warm = await submit_all(
        client.executions, submissions(suite, pipeline, f"{stamp}-warm", WARMUP)
    )
    await poller.wait_for(
        [s.execution_id for s in warm], "SUCCEEDED", timeout_s=120, what="warm-up"
    )
    requests = submissions(suite, pipeline, stamp, spec.n)
    before, idle_rate = await settle_and_sample_idle(suite)
    if args.start_line:
        # Side by side with other bench processes: start the window when they all do.
        await wait_at_start_line(
            Path(args.start_line) / spec.name, args.start_line_party, args.start_line_parties
        )
        before = suite.pg.read()
    poller.queries = 0
    claims_before = await claims_now(suite)
    meter = Meter(suite, pids)
    meter.start(before)
    profilers = await start_profilers(suite, pids, spec.name)
    if spec.paced:
        # A few calls in flight so that one slow answer does not delay the next submission.
        submitted = await submit_all(
            client.executions, requests, concurrency=args.paced_concurrency, rate_per_s=args.rate
        )
    else:
        submitted = await submit_all(
            client.executions, requests, concurrency=args.concurrency, coalesce=spec.batched
        )
    ids = [s.execution_id for s in submitted]
    observed = await poller.wait_for(
        ids, "SUCCEEDED", timeout_s=max(300.0, spec.n / 10), what=spec.name
    )
    window = meter.stop()
    hotspots = await stop_profilers(profilers)
    claims = await claim_figures(suite, claims_before)
    polls = poller.queries
    done = await poller.updated_at(ids, "SUCCEEDED")
    actors = await step_actors(poller, ids)
    await asyncio.sleep(args.stats_settle_s)
    settled = suite.pg.read()
    with_tail = meter.processes_so_far()
    n = len(submitted)
    first = min(s.submitted_at for s in submitted)
    latencies = [done[s.execution_id] - s.submitted_at for s in submitted if s.execution_id in done]
    makespan = max(done.values()) - first
    return {
        "run": spec.name,
        "workload": spec.workload,
        "transport": spec.transport,
        "paced": spec.paced,
        "scaled": spec.scaled,
        "pipeline": suite.releases[pipeline].pipeline_id,
        "n": n,
        "completed": len(latencies),
        "submit_rate_per_s": n / (max(s.answered_at for s in submitted) - first),
        "makespan_s": makespan,
        "throughput_per_s": len(latencies) / makespan,
        "latency_ms": latency_ms(latencies),
        "cpu": {
            **cpu_figures(window, n, first, observed),
            # The window plus the settle period after it (no load then), so spans still queued
            # when the last execution finished are exported, and counted, by its end.
            "processes_with_tail_s": with_tail,
            "tail_s": time.time() - observed,
        },
        "pg": {
            **pg_figures(suite, window, n),
            **xact_commit_figures(window.before, window.after, settled, idle_rate, polls, n),
        },
        "claim_latency": claims,
        **({"profile": hotspots} if hotspots else {}),
        "step_actors": actors,
        # When each execution was submitted first and finished (epoch s), to compare runs that
        # went side by side over the time they overlapped.
        "timeline": {"first_submit_s": first, "succeeded_s": sorted(done.values())},
    }


async def start_profilers(
    suite: Suite, extra_pids: dict[str, list[int]], run: str
) -> dict[str, Profiler]:
    """`--py-spy`: one py-spy per process named in `--py-spy-of`, for the timed window."""
    args = suite.args
    if not args.py_spy:
        return {}
    pids = suite.current_pids(extra_pids)
    profilers = {}
    for name in (n.strip() for n in args.py_spy_of.split(",") if n.strip()):
        for pid in pids.get(name, [])[:1]:
            output = suite.work_dir / f"py-spy-{run}-{name}.txt"
            profilers[name] = await start_profiler(args.py_spy, pid, output)
    return profilers


async def stop_profilers(profilers: dict[str, Profiler]) -> dict[str, Any]:
    """The hot spots of each profiled process (none without `--py-spy`)."""
    return {name: await stop_profiler(profiler) for name, profiler in profilers.items()}


async def run_w3(
    suite: Suite, client: CoordinatorClient, spec: RunSpec, pids: dict[str, list[int]], stamp: str
) -> dict[str, Any]:
    args = suite.args
    name = "w3final" if args.w3_final_await else "w3"
    poller = Poller(suite.coordinator_url)
    warm = await submit_all(client.executions, submissions(suite, name, f"{stamp}-warm", WARMUP))
    warm_ids = [s.execution_id for s in warm]
    await poller.wait_for(warm_ids, "WAITING_EXTERNAL", timeout_s=120, what="warm-up park")
    await complete_all(
        client, await waiting_interactions(poller, warm_ids), args.complete_concurrency
    )
    await poller.wait_for(warm_ids, "SUCCEEDED", timeout_s=120, what="warm-up completion")
    requests = submissions(suite, name, stamp, spec.n)
    before, idle_rate = await settle_and_sample_idle(suite)
    poller.queries = 0
    # Phase 1: park.
    meter = Meter(suite, pids)
    meter.start(before)
    submitted = await submit_all(client.executions, requests, concurrency=args.concurrency)
    ids = [s.execution_id for s in submitted]
    park_observed = await poller.wait_for(
        ids, "WAITING_EXTERNAL", timeout_s=max(300.0, spec.n / 10), what=f"{spec.name} park"
    )
    park = meter.stop()
    parked_at = await poller.updated_at(ids, "WAITING_EXTERNAL")
    interactions = await waiting_interactions(poller, ids)
    await asyncio.sleep(QUIET_S)
    # Phase 2: complete.
    claims_before = await claims_now(suite)
    meter = Meter(suite, pids)
    meter.start()
    profilers = await start_profilers(suite, pids, spec.name)
    completed = await complete_all(client, interactions, args.complete_concurrency)
    observed = await poller.wait_for(
        ids, "SUCCEEDED", timeout_s=max(300.0, spec.n / 10), what=f"{spec.name} completion"
    )
    event = meter.stop()
    hotspots = await stop_profilers(profilers)
    claims = await claim_figures(suite, claims_before)
    polls = poller.queries
    done = await poller.updated_at(ids, "SUCCEEDED")
    await asyncio.sleep(args.stats_settle_s)
    settled = suite.pg.read()
    n = len(ids)
    first_submit = min(s.submitted_at for s in submitted)
    first_call = min(c.called_at for c in completed)
    latencies = [done[c.execution_id] - c.called_at for c in completed if c.execution_id in done]
    makespan = max(done.values()) - first_call
    park_pg = pg_figures(suite, park, n)
    event_pg = pg_figures(suite, event, n)
    return {
        "run": spec.name,
        "workload": spec.workload,
        "transport": spec.transport,
        "paced": False,
        "scaled": False,
        "pipeline": suite.releases[name].pipeline_id,
        "n": n,
        "completed": len(latencies),
        "park": {
            "submit_rate_per_s": n / (max(s.answered_at for s in submitted) - first_submit),
            "time_to_park_all_s": max(parked_at.values()) - first_submit,
            "observed_all_parked_s": park_observed - first_submit,
            "cpu": cpu_figures(park, n, first_submit, park_observed),
            "pg": park_pg,
        },
        "complete_rate_per_s": n / (max(c.answered_at for c in completed) - first_call),
        "makespan_s": makespan,
        "throughput_per_s": len(latencies) / makespan,
        "latency_ms": latency_ms(latencies),
        "cpu": cpu_figures(event, n, first_call, observed),
        "pg": {
            **event_pg,
            "total_write_xacts_per_execution": _sum_or_none(
                park_pg["write_xacts_per_execution"], event_pg["write_xacts_per_execution"]
            ),
            **xact_commit_figures(park.before, event.after, settled, idle_rate, polls, n),
        },
        "claim_latency": claims,
        **({"profile": hotspots} if hotspots else {}),
        "step_actors": await step_actors(poller, ids),
    }


def _sum_or_none(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def w3_pipeline(args: argparse.Namespace) -> str:
    return "w3final" if args.w3_final_await else "w3"


async def run_one(suite: Suite, spec: RunSpec) -> dict[str, Any]:
    stamp = f"{spec.name}-{int(time.time())}"
    supervisor = Supervisor(log_dir=suite.logs)
    args = suite.args
    try:
        pipeline = w3_pipeline(args) if spec.workload == "w3" else spec.workload
        pids = await asyncio.to_thread(
            start_worker_side, suite, supervisor, [pipeline], spec.transport, stamp
        )
        async with coordinator_client(suite.coordinator_target) as client:
            if spec.workload == "w3":
                result = await run_w3(suite, client, spec, pids, stamp)
            else:
                result = await run_steps(suite, client, spec, pids, stamp)
    finally:
        await asyncio.to_thread(supervisor.stop_all)
    result["config"] = {
        "submit_concurrency": args.paced_concurrency if spec.paced else args.concurrency,
        "rate_per_s": args.rate if spec.paced else None,
        "complete_concurrency": args.complete_concurrency if spec.workload == "w3" else None,
        "dispatcher_max_in_flight": args.max_in_flight or "dispatcher default",
        "dispatcher_claim_batch": args.claim_batch or "dispatcher default",
        "dispatcher_complete_batch": args.complete_batch or "dispatcher default",
    }
    if spec.scaled:
        result["scale"] = suite.scale
    return result


# -- the scaled runs' backlog ------------------------------------------------------------------


async def load_scale(suite: Suite) -> dict[str, Any]:
    """Make one parked execution and one dead letter for real, clone each with set-based SQL
    (`--scale-parked` / `--scale-dead-letters` times), check the invariants, vacuum."""
    args = suite.args
    stamp = f"scale-{int(time.time())}"
    parked_pipeline = w3_pipeline(args)
    supervisor = Supervisor(log_dir=suite.logs)
    poller = Poller(suite.coordinator_url)
    try:
        await asyncio.to_thread(
            start_worker_side,
            suite,
            supervisor,
            [parked_pipeline, "deadletter"],
            "local",
            stamp,
        )
        async with coordinator_client(suite.coordinator_target) as client:
            parked, dead = await submit_all(
                client.executions,
                [
                    *submissions(suite, parked_pipeline, f"{stamp}-parked-template", 1),
                    *submissions(suite, "deadletter", f"{stamp}-dead-template", 1),
                ],
            )
        await poller.wait_for(
            [parked.execution_id], "WAITING_EXTERNAL", timeout_s=120, what="parked template"
        )
        await poller.wait_for([dead.execution_id], "FAILED", timeout_s=120, what="dead template")
    finally:
        await asyncio.to_thread(supervisor.stop_all)
    print(
        f"[bench] loading {args.scale_parked:,} parked executions and "
        f"{args.scale_dead_letters:,} dead letters",
        file=sys.stderr,
    )
    loaded = []
    for template, count, tag in (
        (parked.execution_id, args.scale_parked, "parked"),
        (dead.execution_id, args.scale_dead_letters, "dead"),
    ):
        if count > 0:
            loaded.append(
                await asyncio.to_thread(
                    scale_load.clone,
                    suite.coordinator_url,
                    tenant=TENANT,
                    template=template,
                    count=count,
                    tag=f"{stamp}-{tag}",
                    batch=args.scale_batch,
                )
            )
    checks = await asyncio.to_thread(scale_load.verify, suite.coordinator_url)
    await asyncio.to_thread(suite.pg.vacuum_and_checkpoint)
    size = await poller.query("SELECT pg_database_size(current_database())", [])
    figures = {
        "parked": args.scale_parked,
        "dead_letters": args.scale_dead_letters,
        "load_s": round(sum(item.seconds for item in loaded), 1),
        "rows": {item.kind: item.rows for item in loaded},
        "checks": checks,
        "database_bytes": int(size[0][0]),
    }
    print(f"[bench] loaded: {json.dumps(figures)}", file=sys.stderr)
    broken = {k: v for k, v in checks.items() if k.startswith(("version_", "dead_")) and v}
    if broken:
        raise RuntimeError(f"the bulk load broke invariants: {broken}")
    return figures


# -- the report --------------------------------------------------------------------------------


def _x(value: float | None, digits: int = 2) -> str:
    return _fmt(value, digits)


def markdown(document: dict[str, Any], peers: Path | None) -> str:
    machine = document["machine"]
    runs: list[dict[str, Any]] = document["runs"]
    lines = [
        f"Measured {machine['date']} on {machine['host']} ({machine['cpus']} CPUs, "
        f"{machine['memory_gib']} GiB, {machine['os']}, Python {machine['python']}, "
        f"PostgreSQL {machine['postgres']}); real dispatcher, trivial steps.",
    ]
    steps = [r for r in runs if r["workload"] in ("w1", "w2")]
    w3 = [r for r in runs if r["workload"] == "w3"]
    if steps:
        lines += [
            "",
            "### W1 one step, W2 three steps (saturating; paced: a fixed submission rate)",
            "",
            "| run | n | submit rate /s | throughput /s | p50 ms | p90 ms | p99 ms | max ms "
            "| claim p50 / mean ms | machine CPU ms / exec "
            "| PG write xacts / exec (coordinator DB) "
            "| all-DB write xacts / exec | xids / exec | xact_commit / exec (idle-corrected) "
            "| WAL bytes / exec |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in steps:
            lat, pg = r["latency_ms"], r["pg"]
            lines.append(
                f"| {r['run']} | {r['n']} | {r['submit_rate_per_s']:,.0f} "
                f"| **{r['throughput_per_s']:,.0f}** | {lat['p50']:.1f} | {lat['p90']:.1f} "
                f"| {lat['p99']:.1f} | {lat['max']:.1f} | {_claims(r)} "
                f"| {r['cpu']['machine_cpu_ms_per_execution']:.2f} "
                f"| **{_x(pg['write_xacts_per_execution'])}** "
                f"| {_x(pg['all_db_write_xacts_per_execution'])} "
                f"| {pg['xids_per_execution']:.2f} | {pg['xact_commit_per_execution']:.2f} "
                f"({pg['xact_commit_per_execution_raw']:.2f} raw) "
                f"| {pg['wal_bytes_per_execution']:,.0f} |"
            )
    lines += scale_section(document)
    if w3:
        lines += [
            "",
            "### W3 await (park N, then complete every interaction)",
            "",
            "| run | n | submit rate /s | time to park all s | park CPU ms / exec "
            "| park write xacts / exec | complete calls /s | completion throughput /s "
            "| p50 ms | p90 ms | p99 ms | max ms | event-phase CPU ms / exec "
            "| event-phase write xacts / exec | total write xacts / exec |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in w3:
            lat, pg, park = r["latency_ms"], r["pg"], r["park"]
            lines.append(
                f"| {r['run']} | {r['n']} | {park['submit_rate_per_s']:,.0f} "
                f"| {park['time_to_park_all_s']:.2f} "
                f"| {park['cpu']['machine_cpu_ms_per_execution']:.2f} "
                f"| {_x(park['pg']['write_xacts_per_execution'])} "
                f"| {r['complete_rate_per_s']:,.0f} | **{r['throughput_per_s']:,.0f}** "
                f"| {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} "
                f"| {r['cpu']['machine_cpu_ms_per_execution']:.2f} "
                f"| {_x(pg['write_xacts_per_execution'])} "
                f"| **{_x(pg['total_write_xacts_per_execution'])}** |"
            )
    lines += [
        "",
        "Who recorded the step transitions (history actors) and CPU seconds by process:",
        "",
    ]
    for r in runs:
        actors = ", ".join(f"{k} {v}" for k, v in r["step_actors"].items())
        cpu = r["cpu"]
        parts = ", ".join(f"{k} {v:.2f}" for k, v in cpu["processes_s"].items())
        lines.append(
            f"* {r['run']}: actors {actors}; machine {cpu['machine_busy_s']:.2f} s busy "
            f"({cpu['machine_util_pct']:.0f}% of {cpu['window_s']:.1f} s"
            f"{', completion phase' if r['workload'] == 'w3' else ''}); {parts}"
        )
    lines += ["", "Against DESIGN §14 targets:", ""]
    for r in runs:
        if r.get("paced"):
            continue
        target = TARGETS[r["workload"]]
        unit = "events/s" if r["workload"] == "w3" else "executions/s"
        lines.append(
            f"* {r['run']}: {r['throughput_per_s']:,.0f} {unit} of >= {target:,.0f} "
            f"({r['throughput_per_s'] / target:.2f} of target)"
        )
    if peers is not None and peers.exists():
        lines += peer_sections(runs, parse_peer_tables(peers))
    return "\n".join(lines) + "\n"


def _claims(run: dict[str, Any]) -> str:
    claims = run.get("claim_latency")
    if not claims:
        return "n/a"
    return f"{_x(claims['p50_ms'])} / {_x(claims['mean_ms'])}"


def scale_section(document: dict[str, Any]) -> list[str]:
    """Each scaled run next to the same run on the empty database."""
    runs = {r["run"]: r for r in document["runs"]}
    pairs = [(runs.get(r["run"].removesuffix("-scaled")), r) for r in document["runs"]]
    pairs = [(empty, scaled) for empty, scaled in pairs if scaled.get("scaled")]
    if not pairs:
        return []
    scale = pairs[0][1]["scale"] or {}
    lines = [
        "",
        f"### At scale: {scale.get('parked', 0):,} parked executions and "
        f"{scale.get('dead_letters', 0):,} dead letters (loaded in {scale.get('load_s')} s, "
        f"database {scale.get('database_bytes', 0) / 2**30:.2f} GiB) against the empty database",
        "",
        "| run | throughput /s empty | scaled | ratio | claim p50 ms empty | scaled | ratio "
        "| claim mean ms empty | scaled | ratio | within "
        f"{SCALE_TOLERANCE:.0%} |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for empty, scaled in pairs:
        if empty is None:
            lines.append(f"| {scaled['run']} | (no empty-database run in this session) |")
            continue
        e_claims, s_claims = empty.get("claim_latency") or {}, scaled.get("claim_latency") or {}
        ratios = [
            scaled["throughput_per_s"] / empty["throughput_per_s"],
            _ratio_value(s_claims.get("p50_ms"), e_claims.get("p50_ms")),
            _ratio_value(s_claims.get("mean_ms"), e_claims.get("mean_ms")),
        ]
        within = (
            ratios[0] >= 1 - SCALE_TOLERANCE
            and ratios[1] is not None
            and ratios[1] <= 1 + SCALE_TOLERANCE
        )
        lines.append(
            f"| {scaled['run']} | {empty['throughput_per_s']:,.0f} "
            f"| {scaled['throughput_per_s']:,.0f} | {ratios[0]:.2f} "
            f"| {_x(e_claims.get('p50_ms'))} | {_x(s_claims.get('p50_ms'))} "
            f"| {_x(ratios[1])} | {_x(e_claims.get('mean_ms'))} "
            f"| {_x(s_claims.get('mean_ms'))} | {_x(ratios[2])} | {'yes' if within else 'no'} |"
        )
    return lines


def _ratio_value(ours: float | None, theirs: float | None) -> float | None:
    return None if ours is None or not theirs else ours / theirs


def peer_sections(runs: list[dict[str, Any]], tables: dict[str, list[dict[str, str]]]) -> list[str]:
    lines: list[str] = []
    titles = {"w1": "W1 single-step", "w2": "W2 three-step"}
    for ours in (r for r in runs if r["workload"] in titles and not r.get("paced")):
        workload = ours["workload"]
        lines += [
            "",
            f"### {ours['run']}: ours / peer {workload.upper()} (throughput: >1 is faster; "
            "latency, CPU, writes: <1 is less)",
            "",
            "| peer (config) | throughput /s | ratio | p50 ms | ratio | p99 ms | ratio "
            "| CPU ms / exec | ratio | PG write xacts / exec | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| **ours ({ours['run']})** | {ours['throughput_per_s']:,.0f} | "
            f"| {ours['latency_ms']['p50']:.1f} | | {ours['latency_ms']['p99']:.1f} | "
            f"| {ours['cpu']['machine_cpu_ms_per_execution']:.2f} | "
            f"| {_x(ours['pg']['write_xacts_per_execution'])} | |",
        ]
        for row in peer_rows(tables, titles[workload]):
            tput = _number(next((v for k, v in row.items() if k.startswith("throughput")), ""))
            p50 = _number(row.get("p50 ms", ""))
            p99 = _number(row.get("p99 ms", ""))
            cpu = _number(row.get("machine CPU ms / exec", ""))
            xacts = _number(row.get("PG write xacts / exec", ""))
            lines.append(
                f"| {row.get('system')} ({row.get('config')}) | {_fmt(tput, 0)} "
                f"| {_ratio(ours['throughput_per_s'], tput)} | {_fmt(p50)} "
                f"| {_ratio(ours['latency_ms']['p50'], p50)} | {_fmt(p99)} "
                f"| {_ratio(ours['latency_ms']['p99'], p99)} | {_x(cpu)} "
                f"| {_ratio(ours['cpu']['machine_cpu_ms_per_execution'], cpu)} "
                f"| {_x(xacts)} | {_ratio(ours['pg']['write_xacts_per_execution'], xacts)} |"
            )
    w3_rows = peer_rows(tables, "W3 await")
    for ours in (r for r in runs if r["workload"] == "w3"):
        park = ours["park"]
        lines += [
            "",
            f"### {ours['run']}: ours / peer W3 (throughput: >1 is faster; times, CPU: <1 is less)",
            "",
            "| peer (config) | time to park all s | ratio | park CPU ms / exec | ratio "
            "| event→completion /s | ratio | p50 ms | ratio | p99 ms | ratio "
            "| event-phase CPU ms / exec | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            f"| **ours ({ours['run']})** | {park['time_to_park_all_s']:.2f} | "
            f"| {park['cpu']['machine_cpu_ms_per_execution']:.2f} | "
            f"| {ours['throughput_per_s']:,.0f} | | {ours['latency_ms']['p50']:.1f} | "
            f"| {ours['latency_ms']['p99']:.1f} | "
            f"| {ours['cpu']['machine_cpu_ms_per_execution']:.2f} | |",
        ]
        for row in w3_rows:
            park_s = _number(row.get("time to park all s", ""))
            park_cpu = _number(row.get("park CPU ms / execution", ""))
            tput = _number(row.get("event→completion throughput /s", ""))
            p50 = _number(row.get("p50 ms", ""))
            p99 = _number(row.get("p99 ms", ""))
            cpu = _number(row.get("event-phase CPU ms / execution", ""))
            lines.append(
                f"| {row.get('system')} ({row.get('config')}) | {_x(park_s)} "
                f"| {_ratio(park['time_to_park_all_s'], park_s)} | {_x(park_cpu)} "
                f"| {_ratio(park['cpu']['machine_cpu_ms_per_execution'], park_cpu)} "
                f"| {_fmt(tput, 0)} | {_ratio(ours['throughput_per_s'], tput)} | {_fmt(p50)} "
                f"| {_ratio(ours['latency_ms']['p50'], p50)} | {_fmt(p99)} "
                f"| {_ratio(ours['latency_ms']['p99'], p99)} | {_x(cpu)} "
                f"| {_ratio(ours['cpu']['machine_cpu_ms_per_execution'], cpu)} |"
            )
    paced_rows = peer_rows(tables, "Paced latency")
    for ours in (r for r in runs if r.get("paced")):
        lat = ours["latency_ms"]
        lines += [
            "",
            f"### {ours['run']}: ours / peer paced {ours['workload'].upper()} "
            "(<1 is lower latency)",
            "",
            "| peer (config) | p50 ms | ratio | p90 ms | ratio | p99 ms | ratio | max ms | ratio |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| **ours ({ours['run']})** | {lat['p50']:.1f} | | {lat['p90']:.1f} | "
            f"| {lat['p99']:.1f} | | {lat['max']:.1f} | |",
        ]
        for row in paced_rows:
            if row.get("workload", "").lower() != ours["workload"]:
                continue
            cells = " | ".join(
                f"{_fmt(v)} | {_ratio(lat[q], v)}"
                for q in ("p50", "p90", "p99", "max")
                for v in [_number(row.get(f"{q} ms", ""))]
            )
            lines.append(f"| {row.get('system')} ({row.get('config')}) | {cells} |")
    return lines


def write_outputs(out_dir: Path, document: dict[str, Any], peers: Path | None) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (out_dir / f"dispatcher-{stamp}.json").write_text(
        json.dumps(document, indent=2, default=lambda o: o.__dict__)
    )
    text = markdown(document, peers)
    (out_dir / f"dispatcher-{stamp}.md").write_text(text)
    return text


# -- the driver --------------------------------------------------------------------------------


def run_names(text: str, scale: bool) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if scale:
        names += [name for name in SCALE_RUNS if name not in names]
    return names


def parse_runs(text: str, args: argparse.Namespace) -> list[RunSpec]:
    """The runs in order, the scaled ones last (the bulk load is not undone)."""
    specs = []
    for name in run_names(text, args.scale):
        match = _RUN_NAME.match(name)
        if match is None:
            raise SystemExit(
                f"unknown run {name!r}: use [paced-]w1|w2-local|grpc[-batched][-scaled], "
                "w3-local, w3-grpc"
            )
        paced, workload, transport, batched, scaled = (
            bool(match.group(1)),
            match.group(2),
            match.group(3),
            bool(match.group(4)),
            bool(match.group(5)),
        )
        if workload == "w3" and (paced or scaled or batched):
            raise SystemExit(f"{name!r}: W3 has no paced, batched or scaled run")
        if paced and batched:
            raise SystemExit(f"{name!r}: a paced run submits one at a time; nothing to batch")
        n = {"w1": args.w1_n, "w2": args.w2_n, "w3": args.w3_n}[workload]
        specs.append(
            RunSpec(workload, transport, args.paced_n if paced else n, paced, scaled, batched)
        )
    return sorted(specs, key=lambda spec: spec.scaled)


async def driver_main(args: argparse.Namespace) -> None:
    runs = parse_runs(args.runs, args)
    work_dir = Path(tempfile.mkdtemp(prefix="tpf-dispatcher-bench-"))
    logs = work_dir / "logs"
    logs.mkdir()
    print(f"[bench] work dir {work_dir}", file=sys.stderr)
    embedded: EmbeddedPostgres | None = None
    supervisor = Supervisor(log_dir=logs)
    tracing = TracingExport(enabled=args.tracing, sampler_ratio=args.trace_sampler_ratio)
    try:
        waldump: Path | None = None
        if args.database_url:
            maintenance_url = args.database_url
            # The exact write count needs the server's WAL: on this host and readable.
            wal_dir, waldump = server_wal(maintenance_url) or (None, None)
        else:
            embedded = EmbeddedPostgres(work_dir / "postgres", fast=args.fast_postgres)
            await asyncio.to_thread(embedded.start)
            maintenance_url, wal_dir = embedded.url, embedded.pgdata_dir / "pg_wal"
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
            **tracing.env(),
        }
        metrics = MetricsScrape(enabled=args.metrics, interval_s=args.scrape_interval_s)
        registry = await asyncio.to_thread(
            supervisor.start,
            ServiceSpec(
                name="registry",
                module="tpf_registry",
                port=free_port(),
                env={
                    **common,
                    "TPF_DATABASE_URL": db_url(maintenance_url, REGISTRY_DB),
                    "TPF_DATA_DIR": str(work_dir / "registry"),
                    "TPF_REGISTRY_ARTIFACT_ROOTS": str(work_dir),
                    **metrics.env("registry"),
                },
            ),
        )
        coordinator_url = db_url(maintenance_url, COORDINATOR_DB)
        # /metrics of the coordinator: scraped periodically with --metrics; read twice per run
        # for the claim latency (--claim-latency, and always with scaled runs).
        coordinator_metrics = metrics.env("coordinator")
        if not coordinator_metrics and (args.claim_latency or any(r.scaled for r in runs)):
            coordinator_metrics = {
                "TPF_METRICS_PORT": str(free_port()),
                "TPF_METRICS_HOST": "127.0.0.1",
            }

        def coordinator_spec(name: str, extra: dict[str, str]) -> ServiceSpec:
            return ServiceSpec(
                name=name,
                module="tpf_coordinator",
                port=free_port(),
                env={
                    **common,
                    "TPF_DATABASE_URL": coordinator_url,
                    "TPF_DATA_DIR": str(work_dir / name),
                    "TPF_REGISTRY_TARGET": registry.spec.target,
                    "TPF_REGISTRY_TOKEN": ADMIN,
                    **extra,
                },
            )

        coordinator = await asyncio.to_thread(
            supervisor.start, coordinator_spec("coordinator", coordinator_metrics)
        )
        coordinator_pids = [coordinator.process.pid]
        work_target = ""
        if args.coordinators > 1:
            # A second replica on the same database, serving the dispatchers.
            replica = await asyncio.to_thread(
                supervisor.start, coordinator_spec("coordinator-2", {})
            )
            coordinator_pids.append(replica.process.pid)
            work_target = replica.spec.target
        pg = DatabasePgMeter(maintenance_url, wal_dir, waldump)
        suite = Suite(
            args=args,
            coordinator_target=coordinator.spec.target,
            registry_target=registry.spec.target,
            pg=pg,
            coordinator_oid=pg.database_oid(COORDINATOR_DB),
            coordinator_url=coordinator_url,
            pids={"coordinator": coordinator_pids, "registry": [registry.process.pid]},
            postgres_pid=(
                embedded.pid
                if embedded is not None
                else (postmaster_pid(wal_dir) if wal_dir is not None else None)
            ),
            work_dir=work_dir,
            logs=logs,
            tracing=tracing,
            metrics=metrics,
            claims=(
                ClaimLatency(int(coordinator_metrics["TPF_METRICS_PORT"]))
                if coordinator_metrics and args.coordinators == 1
                else None
            ),
            work_target=work_target,
        )
        pipelines = ["w1", "w2", w3_pipeline(args)]
        await register_releases(
            suite, pipelines + (["deadletter"] if any(r.scaled for r in runs) else [])
        )
        results = []
        async with metrics.running():
            for spec in runs:
                if spec.scaled and suite.scale is None:
                    suite.scale = await load_scale(suite)
                print(f"[bench] run {spec.name} n={spec.n}", file=sys.stderr)
                result = await run_one(suite, spec)
                results.append(result)
                print(f"[bench] {spec.name}: {one_line(result)}", file=sys.stderr)
        document: dict[str, Any] = {
            "metrics": metrics.figures(),
            "tracing": tracing.figures(),
            "machine": machine_facts(postgres_version),
            "postgres": "embedded" if embedded else "external",
            "w3_pipeline": "await only" if args.w3_final_await else "await, then one step",
            "wal_commit_count": wal_dir is not None,
            "scale": suite.scale,
            "runs": results,
        }
        peers = Path(args.peers_summary) if args.peers_summary else None
        print(await asyncio.to_thread(write_outputs, Path(args.out_dir), document, peers))
    finally:
        await asyncio.to_thread(supervisor.stop_all)
        tracing.stop()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        elif any(r.scaled for r in runs) and not args.keep_databases:
            # A million parked executions are several GiB on someone else's server.
            await asyncio.to_thread(drop_databases, args.database_url)
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)


def drop_databases(maintenance_url: str) -> None:
    try:
        with psycopg.connect(maintenance_url, autocommit=True) as conn:
            for name in (COORDINATOR_DB, REGISTRY_DB):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as error:
        print(f"[bench] could not drop the bench databases: {error}", file=sys.stderr)


def one_line(result: dict[str, Any]) -> str:
    lat = result["latency_ms"]
    park = result.get("park")
    parked = f"parked all in {park['time_to_park_all_s']:.2f} s, " if park else ""
    xacts = result["pg"].get("total_write_xacts_per_execution") or result["pg"].get(
        "write_xacts_per_execution"
    )
    return (
        f"{parked}{result['throughput_per_s']:.0f}/s, p50 {lat['p50']:.1f} ms, "
        f"p99 {lat['p99']:.1f} ms, write xacts/exec {xacts}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run_dispatcher_bench")
    parser.add_argument(
        "--runs",
        default=DEFAULT_RUNS,
        help="[paced-]w1|w2-local|grpc[-scaled], w3-local, w3-grpc, comma-separated",
    )
    parser.add_argument("--w1-n", type=int, default=5000, help="executions per W1 run")
    parser.add_argument("--w2-n", type=int, default=2000, help="executions per W2 run")
    parser.add_argument("--w3-n", type=int, default=1000, help="executions per W3 run")
    parser.add_argument("--paced-n", type=int, default=500, help="executions per paced run")
    parser.add_argument("--rate", type=float, default=50.0, help="paced submissions per second")
    parser.add_argument(
        "--paced-concurrency", type=int, default=8, help="paced submit calls in flight at most"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="submits in flight")
    parser.add_argument(
        "--complete-concurrency",
        type=int,
        default=32,
        help="W3 CompleteInteraction calls in flight",
    )
    parser.add_argument(
        "--w3-final-await",
        action="store_true",
        help="W3 pipeline = the await alone (default: the await, then one trivial step)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=1000,
        help="TPF_MAX_IN_FLIGHT (1000: trivial local steps; PgQueuer runs its tasks unbounded)",
    )
    parser.add_argument("--claim-batch", type=int, default=None, help="TPF_CLAIM_BATCH_SIZE")
    parser.add_argument("--complete-batch", type=int, default=None, help="TPF_COMPLETE_BATCH_SIZE")
    parser.add_argument("--database-url", default=None, help="an existing server (maintenance DB)")
    parser.add_argument("--fast-postgres", action="store_true", help="fsync=off (not like peers)")
    parser.add_argument("--log-level", default="WARNING", help="TPF_LOG_LEVEL of the services")
    parser.add_argument("--stats-settle-s", type=float, default=11.0)
    parser.add_argument("--idle-sample-s", type=float, default=5.0)
    parser.add_argument("--peers-summary", default=str(DEFAULT_PEERS_SUMMARY))
    parser.add_argument("--out-dir", default=str(REPO / "bench" / "results"))
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    parser.add_argument(
        "--start-line",
        default="",
        help="a directory shared with bench processes running side by side: each W1/W2 window "
        "starts once --start-line-parties of them have reached it (bench/start_line.py)",
    )
    parser.add_argument("--start-line-party", default=f"bench-{os.getpid()}")
    parser.add_argument("--start-line-parties", type=int, default=2)
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="every service serves /metrics (TPF_METRICS_PORT), scraped during the runs",
    )
    parser.add_argument("--scrape-interval-s", type=float, default=5.0, help="with --metrics")
    parser.add_argument(
        "--claim-latency",
        action="store_true",
        help="the coordinator serves /metrics; each run reports its claim latency",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help=f"add {' and '.join(SCALE_RUNS)} (W1 on the empty database, then at scale)",
    )
    parser.add_argument(
        "--scale-parked", type=int, default=1_000_000, help="parked executions to load"
    )
    parser.add_argument(
        "--scale-dead-letters", type=int, default=100_000, help="dead letters to load"
    )
    parser.add_argument(
        "--scale-batch", type=int, default=50_000, help="clones per load transaction"
    )
    parser.add_argument(
        "--keep-databases",
        action="store_true",
        help="with --database-url and a scaled run: keep the loaded databases (dropped at the end)",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="every service exports its spans over OTLP to a receiver in this process",
    )
    parser.add_argument(
        "--trace-sampler-ratio",
        type=float,
        default=None,
        help="with --tracing: parentbased_traceidratio with this ratio (default: every trace)",
    )
    parser.add_argument(
        "--coordinators",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: a second coordinator replica serves the dispatcher (submissions stay on the "
        "first); no claim latency then",
    )
    parser.add_argument(
        "--py-spy",
        default=None,
        help="py-spy binary: profile the processes of --py-spy-of in each timed window "
        "(W3: its event phase) "
        "(costs CPU: not for figures; use with --keep to keep the raw stacks)",
    )
    parser.add_argument(
        "--py-spy-of",
        default="coordinator",
        help="processes to profile: coordinator, dispatcher, registry, worker, comma-separated",
    )
    args = parser.parse_args(argv)
    asyncio.run(driver_main(args))


if __name__ == "__main__":
    main()
