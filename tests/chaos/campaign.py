"""The crash campaign: restaurant orders through REST, gRPC and SQS on `make dev`'s suite while
each of its process types is killed once, then a check of every execution in the database.

    python -m tests.chaos.campaign --executions 300      # what `make chaos` runs

The suite is `make dev`'s own launcher (python -m tpf_devserver) on free ports and a fresh data
dir, with the example's steps left to the remote gRPC worker (TPF_DEV_LOCAL_WORKER=false), so
the dispatcher calls it over the network and killing it matters. Orders are submitted at a
steady pace; once each seventh of them is under way, the next process type is killed with
SIGKILL (coordinator, Postgres, dispatcher, registry, worker, gateway, SQS bridge) and the
campaign waits until make dev's supervisor has it serving again. Clients retry what fails, with
the same idempotency key; a loop answers every await (accepting two orders in three, declining
the third) over another channel than the order came in. When every execution has ended,
tests/chaos/verify.py checks them from the coordinator's tables; then Ctrl-C must stop the
suite with exit code 0.

Prints a JSON report; exits 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from tests.chaos.clients import suite_clients
from tests.chaos.kills import KILL_ORDER, Kill, kill_and_wait
from tests.chaos.load import Load, Tally
from tests.chaos.orders import CHANNELS, Order, plan_orders
from tests.chaos.verify import Verification, terminal_count, verify
from tests.harness.postgres import reachable_data_dir
from tests.support.dev_suite import DevSuite, dev_suite

# Work held by a killed process comes back when its lease or the SQS visibility timeout runs
# out; shorter than the defaults (30 s each) so that the campaign's tail is seconds, not half a
# minute per kill. Every other setting is make dev's.
SUITE_ENV: Final = {
    "TPF_DEV_LOCAL_WORKER": "false",
    "TPF_LEASE_MS": "10000",
    "TPF_SQS_VISIBILITY_TIMEOUT_S": "10",
    "TPF_SQS_VISIBILITY_HEARTBEAT_S": "3",
}
DEFAULT_EXECUTIONS: Final = 300


@dataclass(frozen=True)
class CampaignConfig:
    executions: int = DEFAULT_EXECUTIONS
    # The load is spread over this many seconds per kill (at least one order a second).
    seconds_per_kill: float = 6.0
    # After the last submission, how long executions may take to end.
    settle_timeout_s: float = 300.0


@dataclass
class Report:
    executions: int
    kills: list[Kill] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    abandoned: int = 0
    bridge_dead_letters: int = 0
    launcher_exit_code: int | None = None
    # Exits the supervisor logged beyond the kills (a child that gave up by itself), by child.
    unplanned_exits: dict[str, int] = field(default_factory=dict)
    # The first error line each service logged while Ctrl-C stopped it, by service.
    shutdown_errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    verification: Verification = field(default_factory=Verification)

    @property
    def problems(self) -> list[str]:
        found = list(self.verification.problems)
        if len(self.kills) != len(KILL_ORDER):
            found.append(f"{len(self.kills)} kills, expected {len(KILL_ORDER)}")
        if self.abandoned:
            found.append(f"{self.abandoned} orders never accepted")
        if self.bridge_dead_letters:
            found.append(f"{self.bridge_dead_letters} messages on the bridge's dead-letter queue")
        if self.launcher_exit_code != 0:
            found.append(f"make dev's launcher exited with {self.launcher_exit_code} on Ctrl-C")
        found += [f"{name} exited {n} times by itself" for name, n in self.unplanned_exits.items()]
        found += [
            f"{name} logged on shutdown: {line}" for name, line in self.shutdown_errors.items()
        ]
        return found

    def as_json(self) -> dict[str, Any]:
        tally, checked = self.tally, self.verification
        return {
            "ok": not self.problems,
            "problems": self.problems,
            "executions": self.executions,
            "seconds": self.seconds,
            "kills": [asdict(kill) for kill in self.kills],
            "statuses": dict(checked.statuses),
            "history_events": dict(checked.history_events),
            "problem_count": checked.problem_count,
            "submit_attempts": dict(tally.submit_attempts),
            "submit_failures": dict(tally.submit_failures),
            "answers_sent": dict(tally.answers_sent),
            "answer_failures": dict(tally.answer_failures),
            "listing_failures": dict(tally.listing_failures),
            "abandoned": self.abandoned,
            "bridge_dead_letters": self.bridge_dead_letters,
            "unplanned_exits": self.unplanned_exits,
            "shutdown_errors": self.shutdown_errors,
            "launcher_exit_code": self.launcher_exit_code,
        }


def run_campaign(config: CampaignConfig, work_dir: Path) -> Report:
    """Start the suite in `work_dir`, drive the load and the kills, verify, stop the suite."""
    report = Report(executions=config.executions)
    orders = plan_orders(config.executions)
    began = time.monotonic()
    with (
        reachable_data_dir(work_dir / "data") as data_dir,
        dev_suite(data_dir, work_dir / "make-dev.out", SUITE_ENV) as suite,
    ):
        report.seconds["startup"] = round(time.monotonic() - began, 1)
        asyncio.run(_drive(suite, orders, config, report))
        checked = time.monotonic()
        report.verification = verify(suite.database_url, orders)
        report.seconds["verify"] = round(time.monotonic() - checked, 1)
        report.unplanned_exits = _unplanned_exits(suite, report.kills)
        offsets = {log: log.stat().st_size for log in suite.log_dir.glob("*.log")}
        report.launcher_exit_code = suite.interrupt()
        report.shutdown_errors = _shutdown_errors(offsets)
    report.seconds["total"] = round(time.monotonic() - began, 1)
    return report


async def _drive(
    suite: DevSuite, orders: list[Order], config: CampaignConfig, report: Report
) -> None:
    async with suite_clients(suite) as clients:
        load = Load(clients, orders)
        report.tally = load.tally
        window_s = len(KILL_ORDER) * config.seconds_per_kill
        rate = max(1.0, len(orders) / window_s)
        began = time.monotonic()
        stop_answering = asyncio.Event()
        answering = asyncio.create_task(load.answer_awaits(stop_answering))
        submitting = asyncio.create_task(
            load.submit_all(rate, give_up_at=began + window_s + config.settle_timeout_s)
        )
        for index, name in enumerate(KILL_ORDER):
            # Kill once this share of the orders is under way, so each kill meets work in flight.
            due = int((index + 0.5) * len(orders) / len(KILL_ORDER))
            await load.wait_started(due)
            report.kills.append(await asyncio.to_thread(kill_and_wait, suite, name, began))
        await submitting
        report.seconds["load"] = round(time.monotonic() - began, 1)
        settling = time.monotonic()
        deadline = settling + config.settle_timeout_s
        while time.monotonic() < deadline:
            ended = await asyncio.to_thread(terminal_count, suite.database_url, orders)
            if ended == len(orders):
                break
            await asyncio.sleep(1.0)
        report.seconds["settle"] = round(time.monotonic() - settling, 1)
        stop_answering.set()
        await answering
        report.abandoned = len(load.abandoned)
        report.bridge_dead_letters = await clients.queue_depth("bridge-dlq")


def _unplanned_exits(suite: DevSuite, kills: list[Kill]) -> dict[str, int]:
    exits = Counter(re.findall(r"supervisor: (\S+) exited \(", suite.banner))
    exits.subtract(kill.name for kill in kills)
    return {name: count for name, count in exits.items() if count > 0}


def _shutdown_errors(offsets: dict[Path, int]) -> dict[str, str]:
    """Each service's first ERROR or traceback line written after Ctrl-C."""
    found: dict[str, str] = {}
    for log, offset in offsets.items():
        stopping = log.read_bytes()[offset:].decode(errors="replace")
        for line in stopping.splitlines():
            if '"level": "ERROR"' in line or "Traceback" in line:
                found[log.stem] = line[:300]
                break
    return found


def summary(report: Report) -> str:
    kills = ", ".join(
        f"{k.name} at {k.at_s:.0f} s back in {k.healed_s:.1f} s" for k in report.kills
    )
    statuses = dict(report.verification.statuses)
    lines = [
        f"{report.executions} executions ({', '.join(CHANNELS)}), {len(report.kills)} kills: "
        f"{kills}",
        f"statuses {statuses}; submit failures {dict(report.tally.submit_failures)}",
        f"seconds {report.seconds}",
        "OK: every check passed" if not report.problems else "FAILED:",
        *(f"  {problem}" for problem in report.problems),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos.campaign",
        description="Crash campaign on make dev's suite (see the module's docstring).",
    )
    parser.add_argument("--executions", type=int, default=DEFAULT_EXECUTIONS)
    parser.add_argument(
        "--seconds-per-kill",
        type=float,
        default=CampaignConfig.seconds_per_kill,
        help="the load is spread over this many seconds per kill",
    )
    parser.add_argument("--report", type=Path, help="also write the JSON report here")
    parser.add_argument(
        "--work-dir", type=Path, help="keep the suite's data and logs here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    config = CampaignConfig(executions=args.executions, seconds_per_kill=args.seconds_per_kill)
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        report = run_campaign(config, args.work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="tpf-chaos-") as work:
            report = run_campaign(config, Path(work))
    document = json.dumps(report.as_json(), indent=2)
    if args.report is not None:
        args.report.write_text(document + "\n")
    print(document)
    print(summary(report), file=sys.stderr)
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
