"""The crash campaign (tests/chaos/campaign.py) at a small scale, as `make test` runs it.

TPF_CHAOS_EXECUTIONS sets the number of orders (default 70: ten per kill); `make chaos` runs the
full campaign (300 and more) with the same code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.campaign import CampaignConfig, run_campaign, summary
from tests.chaos.kills import KILL_ORDER
from tests.chaos.orders import CHANNELS

pytestmark = pytest.mark.e2e

EXECUTIONS_ENV = "TPF_CHAOS_EXECUTIONS"
CI_EXECUTIONS = 70


@pytest.mark.timeout(900)
def test_every_order_ends_once_with_its_answer_while_each_process_type_is_killed(
    tmp_path: Path,
) -> None:
    executions = int(os.environ.get(EXECUTIONS_ENV, CI_EXECUTIONS))
    report = run_campaign(CampaignConfig(executions=executions), tmp_path)

    assert not report.problems, summary(report)
    assert [kill.name for kill in report.kills] == list(KILL_ORDER)
    assert report.verification.executions == executions
    assert report.verification.statuses == {"SUCCEEDED": executions}
    # Every channel carried its share of the submissions and of the answers.
    assert set(report.tally.submit_attempts) == set(CHANNELS)
    assert set(report.tally.answers_sent) == set(CHANNELS)
