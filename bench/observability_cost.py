"""What observability costs: the dispatcher bench with tracing (and/or metrics) off, then on.

    .venv/bin/python -m bench.observability_cost                         # tracing, w2-grpc n=300
    .venv/bin/python -m bench.observability_cost --on tracing,metrics --w2-n 2000 --repeat 3
    .venv/bin/python -m bench.observability_cost --trace-sampler-ratio 0.1

Each pair runs `bench.run_dispatcher_bench` twice as its own process, the same runs with the
same settings: first with everything off, then with `--tracing` (every service exports its
spans over OTLP/gRPC to a receiver in the bench process) and/or `--metrics` (every service
serves /metrics, scraped every 5 s). `--repeat` alternates more pairs, so that drift on a busy
machine falls on both sides. The ratio is on / off of the medians: throughput 0.95 means 5 %
fewer executions per second with observability on. On a shared machine throughput drifts
with what else runs; the services' CPU per execution (coordinator, registry, dispatcher and
worker processes, from their own CPU times) does not, so it is reported beside it. Writes
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


def _bench(args: argparse.Namespace, switches: list[str]) -> dict[str, Any]:
    """One run of the dispatcher bench; its result document."""
    with tempfile.TemporaryDirectory(prefix="tpf-observability-") as out_dir:
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
        label = "+".join(switches) or "off"
        print(f"[observability] {label}: {' '.join(command[1:])}", file=sys.stderr)
        subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        (result,) = Path(out_dir).glob("dispatcher-*.json")
        document: dict[str, Any] = json.loads(result.read_text())
        return document


# The processes whose CPU tracing and metrics add to (the bench process, which also holds the
# OTLP receiver, and Postgres are left out).
SERVICES = ("coordinator", "registry", "dispatcher", "worker")


def _service_cpu_ms(row: dict[str, Any]) -> float:
    """CPU of the services per execution: unlike throughput on a shared machine, what other
    processes do does not change it."""
    processes: dict[str, float] = row["cpu"]["processes_s"]
    executions: int = row["n"]
    return 1000 * sum(processes.get(name, 0.0) for name in SERVICES) / executions


def _figures(documents: list[dict[str, Any]], run: str) -> dict[str, float]:
    rows = [next(r for r in d["runs"] if r["run"] == run) for d in documents]
    return {
        "throughput_per_s": statistics.median(r["throughput_per_s"] for r in rows),
        "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in rows),
        "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in rows),
        "service_cpu_ms_per_execution": statistics.median(_service_cpu_ms(r) for r in rows),
    }


def compare(off: list[dict[str, Any]], on: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for run in [r["run"] for r in off[0]["runs"]]:
        off_figures, on_figures = _figures(off, run), _figures(on, run)
        rows.append(
            {
                "run": run,
                "off": off_figures,
                "on": on_figures,
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
        f"{document['pairs']} pair(s), medians; sampler ratio "
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
            f"| **{row['throughput_ratio']:.3f}** | {off['service_cpu_ms_per_execution']:.1f} "
            f"| {on['service_cpu_ms_per_execution']:.1f} | **{row['service_cpu_ratio']:.3f}** "
            f"| {off['p50_ms']:.1f} | {on['p50_ms']:.1f} "
            f"| {off['p99_ms']:.1f} | {on['p99_ms']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.observability_cost")
    parser.add_argument("--on", default="tracing", help="what to switch on: tracing, metrics")
    parser.add_argument("--runs", default="w2-grpc", help="the dispatcher bench's runs")
    parser.add_argument("--w2-n", type=int, default=300)
    parser.add_argument("--w3-n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=1, help="off/on pairs, alternated")
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
        off.append(_bench(args, []))
        on.append(_bench(args, switches))
    rows = compare(off, on)
    document = {
        "switched_on": switches,
        "pairs": args.repeat,
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
