"""The same-sitting comparison: our runs and the peers' runs, medians over repetitions, and the
ratio table of issue 15's targets.

Figures are read from the result JSON each bench writes: ours from `run_dispatcher_bench` (and
`run_coordinator_bench` for the coordinator-only W1), the peers' from their drivers' `--out`
files. Both define latency as completion time in the system's own store minus the client's
`time.time()` just before the submit call, nearest-rank percentiles.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Run = dict[str, Any]
Getter = Callable[[Run], float | None]


def _get(*keys: str) -> Getter:
    def get(run: Run) -> float | None:
        value: Any = run
        for key in keys:
            if not isinstance(value, dict) or value.get(key) is None:
                return None
            value = value[key]
        return float(value)

    return get


def median(runs: Sequence[Run], get: Getter) -> float | None:
    values = [v for v in (get(r) for r in runs) if v is not None]
    return statistics.median(values) if values else None


def spread(runs: Sequence[Run], get: Getter, digits: int) -> str:
    """`median [min-max]` (the median alone for one repetition), as the peers summarize."""
    values = [v for v in (get(r) for r in runs) if v is not None]
    if not values:
        return "n/a"
    text = f"{statistics.median(values):,.{digits}f}"
    if len(values) > 1:
        text += f" [{min(values):,.{digits}f}-{max(values):,.{digits}f}]"
    return text


# Ours (run_dispatcher_bench / run_coordinator_bench documents).
OURS_THROUGHPUT = _get("throughput_per_s")
P50 = _get("latency_ms", "p50")
P99 = _get("latency_ms", "p99")
OURS_CPU = _get("cpu", "machine_cpu_ms_per_execution")
OURS_XIDS = _get("pg", "xids_per_execution")
CLAIM_P50 = _get("claim_latency", "p50_ms")


def ours_writes(run: Run) -> float | None:
    """COMMIT records of the coordinator's database per execution (W3: park + event)."""
    pg = run.get("pg") or {}
    value = pg.get("total_write_xacts_per_execution") or pg.get("write_xacts_per_execution")
    return None if value is None else float(value)


# The peers' result files.
PEER_CPU = _get("cpu", "cpu_ms_per_execution")
_PEER_PARK_WRITES = _get("park", "cpu", "pg", "write_xacts_per_execution")
_PEER_EVENT_WRITES = _get("cpu", "pg", "write_xacts_per_execution")


def peer_writes(run: Run) -> float | None:
    """xids assigned per execution (W3: park + event, as ours)."""
    event = _PEER_EVENT_WRITES(run)
    park = _PEER_PARK_WRITES(run)
    return None if event is None else event + (park or 0.0)


@dataclass(frozen=True)
class Target:
    what: str
    ours: str  # our run name
    peer: str | None  # peer run name, or "empty:<run>" for the same run on the empty database
    get: Getter
    peer_get: Getter | None
    goal: str  # ">=" | "<="
    bound: float
    absolute: bool = False  # the goal is on our figure itself, not on the ratio


TARGETS = (
    Target("W1 executions/s, local worker", "w1-local", "pgqueuer_w1", OURS_THROUGHPUT,
           OURS_THROUGHPUT, ">=", 1.1),
    Target("W1 executions/s, gRPC worker", "w1-grpc", "pgqueuer_w1", OURS_THROUGHPUT,
           OURS_THROUGHPUT, ">=", 1.1),
    Target("W1 executions/s, local worker, batched submits", "w1-local-batched", "pgqueuer_w1",
           OURS_THROUGHPUT, OURS_THROUGHPUT, ">=", 1.1),
    Target("W2 executions/s, local worker", "w2-local", "pgqueuer_w2", OURS_THROUGHPUT,
           OURS_THROUGHPUT, ">=", 1.0),
    Target("W2 executions/s, local worker, batched submits", "w2-local-batched", "pgqueuer_w2",
           OURS_THROUGHPUT, OURS_THROUGHPUT, ">=", 1.0),
    Target("W2 executions/s, gRPC worker", "w2-grpc", "pgqueuer_w2", OURS_THROUGHPUT,
           OURS_THROUGHPUT, ">=", 1.0),
    Target("W3 event→completion/s, local worker", "w3-local", "dbos-inproc_w3",
           OURS_THROUGHPUT, OURS_THROUGHPUT, ">=", 2.0),
    Target("W3 event→completion/s, gRPC worker", "w3-grpc", "dbos-inproc_w3", OURS_THROUGHPUT,
           OURS_THROUGHPUT, ">=", 2.0),
    Target("paced W1 p50 ms (50/s), local worker", "paced-w1-local", "paced_procrastinate_w1",
           P50, P50, "<=", 1.0),
    Target("paced W1 p99 ms (50/s), local worker", "paced-w1-local", "paced_procrastinate_w1",
           P99, P99, "<=", 2.0),
    Target("PG write xacts / W1 execution, local worker", "w1-local", "pgqueuer_w1",
           ours_writes, peer_writes, "<=", 1.5, absolute=True),
    Target("PG write xacts / W1 execution, gRPC worker", "w1-grpc", "pgqueuer_w1",
           ours_writes, peer_writes, "<=", 1.5, absolute=True),
    Target("claim p50 ms at scale / empty database", "w1-local-scaled", "empty:w1-local",
           CLAIM_P50, CLAIM_P50, "<=", 1.2),
    Target("W1 executions/s at scale / empty database", "w1-local-scaled", "empty:w1-local",
           OURS_THROUGHPUT, OURS_THROUGHPUT, ">=", 0.8),
)  # fmt: skip


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def target_rows(
    ours: dict[str, list[Run]], peers: dict[str, list[Run]], coordinator_only: list[Run]
) -> list[dict[str, Any]]:
    """One row per target whose runs were measured: figures, ratio, goal and verdict."""
    rows = []
    for target in TARGETS:
        if target.ours not in ours:
            continue
        mine = median(ours[target.ours], target.get)
        theirs: float | None = None
        if target.peer is not None and target.peer.startswith("empty:"):
            base = target.peer.removeprefix("empty:")
            # The scaled run and its empty-database run come from the same sessions.
            theirs = median(ours.get(base, []), target.get)
            peer_label = f"ours, empty database ({base})"
        else:
            peer_runs = peers.get(target.peer or "", [])
            if target.peer_get is not None and peer_runs:
                theirs = median(peer_runs, target.peer_get)
            peer_label = target.peer or ""
        ratio = None if mine is None or not theirs else mine / theirs
        judged = mine if target.absolute else ratio
        met = None
        if judged is not None:
            met = judged >= target.bound if target.goal == ">=" else judged <= target.bound
        goal = f"{'≥' if target.goal == '>=' else '≤'} {target.bound:g}"
        rows.append(
            {
                "target": target.what,
                "ours_run": target.ours,
                "ours": mine,
                "peer_run": peer_label,
                "peer": theirs,
                "ratio": ratio,
                "goal": f"ours {goal}" if target.absolute else f"ratio {goal}",
                "met": met,
            }
        )
    if coordinator_only and "pgqueuer_w1" in peers:
        mine = median(coordinator_only, OURS_THROUGHPUT)
        theirs = median(peers["pgqueuer_w1"], OURS_THROUGHPUT)
        rows.append(
            {
                "target": "W1 executions/s, coordinator only, fake dispatcher",
                "ours_run": "coordinator-only w1",
                "ours": mine,
                "peer_run": "pgqueuer_w1",
                "peer": theirs,
                "ratio": None if mine is None or not theirs else mine / theirs,
                "goal": "(for reference)",
                "met": None,
            }
        )
    return rows


def markdown(
    *,
    header: str,
    ours: dict[str, list[Run]],
    peers: dict[str, list[Run]],
    coordinator_only: list[Run],
    rows: list[dict[str, Any]],
    failures: list[str],
) -> str:
    verdict = {True: "**yes**", False: "no", None: ""}
    lines = [
        header,
        "",
        "### Targets (ours / peer, same sitting, medians)",
        "",
        "| target | ours (run) | ours | peer (run) | peer | ratio | goal | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['target']} | {row['ours_run']} | {_fmt(row['ours'], 2)} "
            f"| {row['peer_run']} | {_fmt(row['peer'], 2)} | {_fmt(row['ratio'], 2)} "
            f"| {row['goal']} | {verdict[row['met']]} |"
        )
    lines += [
        "",
        "### Ours (real dispatcher; median [min-max] over repetitions)",
        "",
        "| run | reps | n | throughput /s | p50 ms | p99 ms | claim p50 ms "
        "| machine CPU ms / exec | PG write xacts / exec (WAL commits) | xids / exec |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in ours.items():
        lines.append(_ours_line(name, runs))
    if coordinator_only:
        lines.append(_ours_line("w1 (coordinator only, fake dispatcher)", coordinator_only))
    lines += [
        "",
        "### Peers (same Postgres server, same sitting)",
        "",
        "| run | reps | n | throughput /s | p50 ms | p99 ms | machine CPU ms / exec "
        "| PG write xacts / exec (xids) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in peers.items():
        lines.append(
            f"| {name} | {len(runs)} | {runs[0].get('n')} | {spread(runs, OURS_THROUGHPUT, 0)} "
            f"| {spread(runs, P50, 1)} | {spread(runs, P99, 1)} | {spread(runs, PEER_CPU, 2)} "
            f"| {spread(runs, peer_writes, 2)} |"
        )
    if failures:
        lines += ["", "### Failed", "", *(f"* {f}" for f in failures)]
    return "\n".join(lines) + "\n"


def _ours_line(name: str, runs: list[Run]) -> str:
    return (
        f"| {name} | {len(runs)} | {runs[0].get('n')} | {spread(runs, OURS_THROUGHPUT, 0)} "
        f"| {spread(runs, P50, 1)} | {spread(runs, P99, 1)} | {spread(runs, CLAIM_P50, 2)} "
        f"| {spread(runs, OURS_CPU, 2)} | {spread(runs, ours_writes, 2)} "
        f"| {spread(runs, OURS_XIDS, 2)} |"
    )
