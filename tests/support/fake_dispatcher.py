"""Moved to `tpf_testkit.fake_dispatcher` (bench/ shares it); re-exported for the tests."""

from tpf_testkit.fake_dispatcher import (
    FAST_RECONNECT as FAST_RECONNECT,
)
from tpf_testkit.fake_dispatcher import (
    MAX_BATCH as MAX_BATCH,
)
from tpf_testkit.fake_dispatcher import (
    STALE as STALE,
)
from tpf_testkit.fake_dispatcher import (
    SUCCEEDED as SUCCEEDED,
)
from tpf_testkit.fake_dispatcher import (
    DispatcherStats as DispatcherStats,
)
from tpf_testkit.fake_dispatcher import (
    DropWork as DropWork,
)
from tpf_testkit.fake_dispatcher import (
    FakeDispatcher as FakeDispatcher,
)
from tpf_testkit.fake_dispatcher import (
    HistoryReport as HistoryReport,
)
from tpf_testkit.fake_dispatcher import (
    StepFunction as StepFunction,
)
from tpf_testkit.fake_dispatcher import (
    Submitted as Submitted,
)
from tpf_testkit.fake_dispatcher import (
    failed as failed,
)
from tpf_testkit.fake_dispatcher import (
    history_report as history_report,
)
from tpf_testkit.fake_dispatcher import (
    log as log,
)
from tpf_testkit.fake_dispatcher import (
    pipeline_completed as pipeline_completed,
)
from tpf_testkit.fake_dispatcher import (
    step_completed as step_completed,
)
from tpf_testkit.fake_dispatcher import (
    submit_all as submit_all,
)
