"""What observability costs: the dispatcher bench with tracing (and/or metrics) off, and on.

    .venv/bin/python -m bench.observability_cost              # tracing, w2-grpc n=2000, 3 pairs
    .venv/bin/python -m bench.observability_cost --on tracing,metrics
    .venv/bin/python -m bench.observability_cost --trace-sampler-ratio 0.1 --repeat 1

Each pair runs `bench.run_dispatcher_bench` twice, each as its own process with its own
Postgres and services, the same runs with the same settings: once with everything off, once
with `--tracing` (every service exports its spans over OTLP/gRPC to a receiver in that bench
process) and/or `--metrics` (every service serves /metrics, scraped every 5 s).

By default the two run side by side: started together, their timed windows begin at the same
moment (bench/start_line.py), so whatever else the machine runs falls on both alike; the
throughput compared is each side's rate while both were running. `--sequential` runs off,
then on, as separate sittings instead (minutes apart on a shared machine, their conditions
differ more than the cost measured).

Reported, off and on: throughput, latency and the services' CPU per execution (coordinator,
registry, dispatcher and worker processes, from their own CPU times, until the end of the
quiet period after the window, so spans still queued at its end are exported and counted),
each pair's on / off and the median of those, the medians per service. Writes
`<out-dir>/observability-<stamp>.json` and `.md`; nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SWITCHES = ("tracing", "metrics")


def _command(
    args: argparse.Namespace, switches: list[str], out_dir: str, start_line: str = ""
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "bench.run_dispatcher_bench",
        "--runs",
        args.runs,
        "--w2-n",
        str(args.w2_n),
        "--w3-n",
        str(args.w3_n),
        "--concurrency",
        str(args.concurrency),
        "--out-dir",
        out_dir,
        "--peers-summary",
        "",
        *(f"--{switch}" for switch in switches),
    ]
    if "tracing" in switches and args.trace_sampler_ratio is not None:
        command += ["--trace-sampler-ratio", str(args.trace_sampler_ratio)]
    if start_line:
        label = "+".join(switches) or "off"
        command += ["--start-line", start_line, "--start-line-party", label]
    return command


def _document(out_dir: str) -> dict[str, Any]:
    (result,) = Path(out_dir).glob("dispatcher-*.json")
    document: dict[str, Any] = json.loads(result.read_text())
    return document


def _bench(args: argparse.Namespace, switches: list[str]) -> dict[str, Any]:
    """One run of the dispatcher bench on its own; its result document."""
    with tempfile.TemporaryDirectory(prefix="tpf-observability-") as out_dir:
        command = _command(args, switches, out_dir)
        label = "+".join(switches) or "off"
        print(f"[observability] {label}: {' '.join(command[1:])}", file=sys.stderr)
        subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        return _document(out_dir)


def _side_by_side(
    args: argparse.Namespace, switches: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The off and the on bench at the same time, each with its own Postgres and services,
    their timed windows started together (bench/start_line.py); their result documents."""
    with (
        tempfile.TemporaryDirectory(prefix="tpf-observability-off-") as off_dir,
        tempfile.TemporaryDirectory(prefix="tpf-observability-on-") as on_dir,
        tempfile.TemporaryDirectory(prefix="tpf-observability-start-") as start_line,
    ):
        commands = [
            _command(args, [], off_dir, start_line),
            _command(args, switches, on_dir, start_line),
        ]
        print(f"[observability] side by side: {' '.join(commands[1][1:])}", file=sys.stderr)
        processes = [
            subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL) for command in commands
        ]
        codes = [process.wait() for process in processes]
        if any(codes):
            raise SystemExit(f"a bench process failed (exit codes off, on: {codes})")
        off, on = _document(off_dir), _document(on_dir)
    _rates_while_both_ran(off, on)
    return off, on


def _rates_while_both_ran(off: dict[str, Any], on: dict[str, Any]) -> None:
    """Each side's executions finished per second while both sides were running: from the later
    first submission to the earlier last completion. Side by side, the side that finishes first
    leaves the machine to the other, whose own throughput would then flatter it; over the common
    time both shared the machine alike. Stored in each run as `throughput_together_per_s`."""
    for off_run, on_run in zip(off["runs"], on["runs"], strict=True):
        timelines = [off_run.get("timeline"), on_run.get("timeline")]
        if not all(timelines):
            continue
        start = max(t["first_submit_s"] for t in timelines)
        end = min(t["succeeded_s"][-1] for t in timelines)
        if end <= start:
            continue
        for run, timeline in zip((off_run, on_run), timelines, strict=True):
            done = sum(1 for at in timeline["succeeded_s"] if start <= at <= end)
            run["throughput_together_per_s"] = done / (end - start)
            run["together_s"] = end - start


# The processes whose CPU tracing and metrics add to (the bench process, which also holds the
# OTLP receiver, and Postgres are left out).
SERVICES = ("coordinator", "registry", "dispatcher", "worker")


def _process_cpu_ms(row: dict[str, Any], name: str) -> float:
    """CPU of one service per execution. Where the run has it (W2), the CPU until the end of
    the settle period after the window: spans still queued when the window closed are exported
    then, so their cost is counted (the idle tail is the same with tracing on and off)."""
    cpu = row["cpu"]
    processes: dict[str, float] = cpu.get("processes_with_tail_s") or cpu["processes_s"]
    executions: int = row["n"]
    return 1000 * processes.get(name, 0.0) / executions


def _service_cpu_ms(row: dict[str, Any]) -> float:
    """CPU of the services per execution: unlike throughput on a shared machine, what other
    processes do does not change it."""
    return sum(_process_cpu_ms(row, name) for name in SERVICES)


def _throughput(row: dict[str, Any]) -> float:
    """Side by side, the rate while both sides ran; on its own, the run's throughput."""
    rate: float = row.get("throughput_together_per_s") or row["throughput_per_s"]
    return rate


def _figures(documents: list[dict[str, Any]], run: str) -> dict[str, Any]:
    rows = [next(r for r in d["runs"] if r["run"] == run) for d in documents]
    return {
        "throughput_per_s": statistics.median(_throughput(r) for r in rows),
        "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in rows),
        "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in rows),
        "service_cpu_ms_per_execution": statistics.median(_service_cpu_ms(r) for r in rows),
        # Every run's figure (not only the median), to show the spread.
        "service_cpu_ms_each": [round(_service_cpu_ms(r), 2) for r in rows],
        "throughput_each": [round(_throughput(r), 1) for r in rows],
        "cpu_ms_per_execution_by_service": {
            name: statistics.median(_process_cpu_ms(r, name) for r in rows) for name in SERVICES
        },
    }


def compare(off: list[dict[str, Any]], on: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for run in [r["run"] for r in off[0]["runs"]]:
        off_figures, on_figures = _figures(off, run), _figures(on, run)
        pairs = [
            (
                next(r for r in a["runs"] if r["run"] == run),
                next(r for r in b["runs"] if r["run"] == run),
            )
            for a, b in zip(off, on, strict=True)
        ]
        cpu_ratios = [_service_cpu_ms(b) / _service_cpu_ms(a) for a, b in pairs]
        throughput_ratios = [_throughput(b) / _throughput(a) for a, b in pairs]
        rows.append(
            {
                "run": run,
                "off": off_figures,
                "on": on_figures,
                # Each pair's on / off (the two sides of a pair ran under the same conditions
                # side by side), and their median.
                "pair_service_cpu_ratios": [round(r, 3) for r in cpu_ratios],
                "pair_throughput_ratios": [round(r, 3) for r in throughput_ratios],
                "median_pair_service_cpu_ratio": statistics.median(cpu_ratios),
                "median_pair_throughput_ratio": statistics.median(throughput_ratios),
                "throughput_ratio": on_figures["throughput_per_s"]
                / off_figures["throughput_per_s"],
                "p50_ratio": on_figures["p50_ms"] / off_figures["p50_ms"],
                "p99_ratio": on_figures["p99_ms"] / off_figures["p99_ms"],
                "service_cpu_ratio": on_figures["service_cpu_ms_per_execution"]
                / off_figures["service_cpu_ms_per_execution"],
            }
        )
    return rows


def markdown(switches: list[str], rows: list[dict[str, Any]], document: dict[str, Any]) -> str:
    lines = [
        f"## Observability cost: {' and '.join(switches)} on / off",
        "",
        f"{document['pairs']} pair(s) ({document.get('method', 'sequential')}), medians; "
        "sampler ratio "
        f"{document['trace_sampler_ratio'] or 'every trace'}; spans received in the last on "
        f"run: {document['spans_received']}.",
        "",
        "| run | throughput off /s | on /s | ratio | service CPU off ms/exec | on | ratio "
        "| p50 off ms | on ms | p99 off ms | on ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        off, on = row["off"], row["on"]
        lines.append(
            f"| {row['run']} | {off['throughput_per_s']:,.1f} | {on['throughput_per_s']:,.1f} "
            f"| **{row['throughput_ratio']:.3f}** | {off['service_cpu_ms_per_execution']:.2f} "
            f"| {on['service_cpu_ms_per_execution']:.2f} | **{row['service_cpu_ratio']:.3f}** "
            f"| {off['p50_ms']:.1f} | {on['p50_ms']:.1f} "
            f"| {off['p99_ms']:.1f} | {on['p99_ms']:.1f} |"
        )
    lines += [
        "",
        "Each run (off / on): service CPU ms per execution, throughput per second; and the "
        "medians per service (CPU ms per execution, off / on).",
        "",
    ]
    for row in rows:
        lines.append(
            f"* {row['run']}: each pair's on / off: service CPU {row['pair_service_cpu_ratios']} "
            f"(median **{row['median_pair_service_cpu_ratio']:.3f}**), throughput "
            f"{row['pair_throughput_ratios']} (median "
            f"**{row['median_pair_throughput_ratio']:.3f}**)"
        )
    for row in rows:
        off, on = row["off"], row["on"]
        by_service = ", ".join(
            f"{name} {off['cpu_ms_per_execution_by_service'][name]:.2f} / "
            f"{on['cpu_ms_per_execution_by_service'][name]:.2f}"
            for name in SERVICES
        )
        lines.append(
            f"* {row['run']}: CPU {off['service_cpu_ms_each']} / {on['service_cpu_ms_each']}; "
            f"throughput {off['throughput_each']} / {on['throughput_each']}; {by_service}"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.observability_cost")
    parser.add_argument("--on", default="tracing", help="what to switch on: tracing, metrics")
    parser.add_argument("--runs", default="w2-grpc", help="the dispatcher bench's runs")
    parser.add_argument("--w2-n", type=int, default=2000)
    parser.add_argument("--w3-n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="off/on pairs")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="run each pair's off and on one after the other (default: side by side)",
    )
    parser.add_argument("--trace-sampler-ratio", type=float, default=None)
    parser.add_argument("--out-dir", default=str(REPO / "bench" / "results"))
    args = parser.parse_args(argv)
    switches = [s.strip() for s in args.on.split(",") if s.strip()]
    unknown = set(switches) - set(SWITCHES)
    if unknown or not switches:
        raise SystemExit(f"--on takes {', '.join(SWITCHES)}; got {args.on!r}")
    off: list[dict[str, Any]] = []
    on: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        if args.sequential:
            off.append(_bench(args, []))
            on.append(_bench(args, switches))
        else:
            off_document, on_document = _side_by_side(args, switches)
            off.append(off_document)
            on.append(on_document)
    rows = compare(off, on)
    document = {
        "switched_on": switches,
        "pairs": args.repeat,
        "method": "sequential" if args.sequential else "side by side",
        "trace_sampler_ratio": args.trace_sampler_ratio,
        "spans_received": on[-1].get("tracing", {}).get("spans_received"),
        "machine": on[-1].get("machine"),
        "runs": rows,
        # Every bench document, for another look at the figures.
        "documents": {"off": off, "on": on},
    }
    text = markdown(switches, rows, document)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (out_dir / f"observability-{stamp}.json").write_text(json.dumps(document, indent=2))
    (out_dir / f"observability-{stamp}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
