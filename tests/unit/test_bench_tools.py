"""The benchmark tooling's arithmetic and parsing (bench/): no timing is measured or asserted
here, only that the figures the benches report are computed as documented."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from bench import compare_report, peers
from bench.claim_latency import ClaimHistogram, parse
from bench.run_dispatcher_bench import parse_runs

METRICS = """
# HELP tpf_claim_duration_seconds Time of one claim transaction.
# TYPE tpf_claim_duration_seconds histogram
tpf_claim_duration_seconds_bucket{le="0.001"} 0.0
tpf_claim_duration_seconds_bucket{le="0.0025"} 10.0
tpf_claim_duration_seconds_bucket{le="0.005"} 30.0
tpf_claim_duration_seconds_bucket{le="0.01"} 40.0
tpf_claim_duration_seconds_bucket{le="+Inf"} 40.0
tpf_claim_duration_seconds_sum 0.12
tpf_claim_duration_seconds_count 40.0
# HELP tpf_other_total Another metric.
# TYPE tpf_other_total counter
tpf_other_total 3.0
"""


def test_claim_histogram_is_read_from_the_exposition_text() -> None:
    histogram = parse(METRICS)
    assert histogram.count == 40
    assert histogram.total_s == pytest.approx(0.12)
    assert dict(histogram.buckets)[0.005] == 30


def test_claim_quantiles_interpolate_inside_buckets_as_prometheus_does() -> None:
    histogram = parse(METRICS)
    # Rank 20 of 40 lies half-way through the (2.5 ms, 5 ms] bucket (counts 10 -> 30).
    assert histogram.quantile(0.5) == pytest.approx(0.00375)
    # Rank 39.6: in the (5 ms, 10 ms] bucket (30 -> 40), 96 % of the way.
    assert histogram.quantile(0.99) == pytest.approx(0.005 + 0.005 * 0.96)
    figures = histogram.figures()
    assert figures["claims"] == 40
    assert figures["mean_ms"] == pytest.approx(3.0)


def test_claims_of_a_window_are_the_difference_of_two_reads() -> None:
    before = ClaimHistogram(((0.005, 5.0), (0.01, 5.0), (float("inf"), 5.0)), 0.01, 5.0)
    after = ClaimHistogram(((0.005, 5.0), (0.01, 15.0), (float("inf"), 15.0)), 0.085, 15.0)
    window = after.minus(before)
    assert window.count == 10
    assert window.figures()["mean_ms"] == pytest.approx(7.5)
    assert window.quantile(0.5) == pytest.approx(0.0075)  # all ten in (5 ms, 10 ms]
    assert ClaimHistogram((), 0.0, 0.0).quantile(0.5) is None


def _args(runs: str, *, scale: bool = False) -> argparse.Namespace:
    return argparse.Namespace(runs=runs, scale=scale, w1_n=5000, w2_n=2000, w3_n=1000, paced_n=500)


def test_run_names_give_workload_transport_pacing_and_n() -> None:
    specs = parse_runs("paced-w1-local,w2-grpc,w3-local", _args(""))
    assert [(s.name, s.workload, s.transport, s.paced, s.n) for s in specs] == [
        ("paced-w1-local", "w1", "local", True, 500),
        ("w2-grpc", "w2", "grpc", False, 2000),
        ("w3-local", "w3", "local", False, 1000),
    ]


def test_scaled_runs_go_last_and_scale_adds_the_pair() -> None:
    specs = parse_runs("w1-local-scaled,w2-local", _args(""))
    assert [s.name for s in specs] == ["w2-local", "w1-local-scaled"]
    assert specs[1].base_name == "w1-local"
    names = [s.name for s in parse_runs("w2-grpc", _args("", scale=True))]
    assert names == ["w2-grpc", "w1-local", "w1-local-scaled"]


@pytest.mark.parametrize("bad", ["w4-local", "w1-http", "paced-w3-local", "w3-grpc-scaled"])
def test_unknown_or_impossible_runs_are_refused(bad: str) -> None:
    with pytest.raises(SystemExit):
        parse_runs(bad, _args(""))


def _ours(throughput: float, p50: float = 10.0, p99: float = 20.0, **extra: Any) -> dict[str, Any]:
    return {
        "n": 100,
        "throughput_per_s": throughput,
        "latency_ms": {"p50": p50, "p99": p99},
        "pg": {"write_xacts_per_execution": 1.2, "xids_per_execution": 1.2},
        **extra,
    }


def test_target_rows_judge_ratios_and_absolute_goals_on_medians() -> None:
    ours = {
        "w1-local": [_ours(100), _ours(300), _ours(200)],  # median 200
        "paced-w1-local": [_ours(50, p50=5.0, p99=30.0)],
        "w1-local-scaled": [_ours(150)],
    }
    theirs = {
        "pgqueuer_w1": [_ours(160) | {"cpu": {"pg": {"write_xacts_per_execution": 1.9}}}],
        "paced_procrastinate_w1": [_ours(50, p50=4.0, p99=20.0)],
    }
    rows = {r["target"]: r for r in compare_report.target_rows(ours, theirs, [])}
    w1 = rows["W1 executions/s, local worker"]
    assert (w1["ours"], w1["peer"], w1["ratio"], w1["met"]) == (200, 160, 1.25, True)
    assert rows["paced W1 p50 ms (50/s), local worker"]["met"] is False  # 5.0 / 4.0 > 1
    assert rows["paced W1 p99 ms (50/s), local worker"]["met"] is True  # 30 / 20 <= 2
    writes = rows["PG write xacts / W1 execution, local worker"]
    assert (writes["ours"], writes["peer"], writes["met"]) == (1.2, 1.9, True)
    scale = rows["W1 executions/s at scale / empty database"]
    assert (scale["ratio"], scale["met"]) == (0.75, False)
    assert "W2 executions/s, local worker" not in rows  # not measured: no row


def test_peer_runs_and_their_server_come_from_our_database_url() -> None:
    assert [r.name for r in peers.select("")] == list(peers.DEFAULT_PEER_RUNS)
    assert len(peers.select("all")) == len(peers.PEER_RUNS)
    with pytest.raises(SystemExit):
        peers.select("pgqueuer_w3")
    env = peers.environment("postgresql://me:s%40cret@db.local:6543/postgres", None)
    assert (env["BENCH_PG_HOST"], env["BENCH_PG_PORT"], env["BENCH_PG_USER"]) == (
        "db.local",
        "6543",
        "me",
    )
    assert env["PGPASSWORD"] == "s@cret"
    paced = peers.PEER_RUNS["paced_procrastinate_w1"]
    command = peers.command(Path("/w"), paced, 500, 50.0, Path("/o.json"))
    assert command[1:] == [
        "bench_procrastinate.py",
        "--workers",
        "2",
        "--concurrency",
        "10",
        "--workload",
        "w1",
        "--n",
        "500",
        "--rate",
        "50",
        "--out",
        "/o.json",
    ]
