"""scripts/buf-breaking.sh, the breaking-change gate of `make test`, on a temporary copy.

CI runs on a clean clone of the submitted main, so the gate compares with two references that
differ from the commit under test: the committed image of the released API (api/baseline.binpb)
and the protos before the last commit that changed proto/. Each test commits edits to a git
repository of its own holding a copy of proto/, buf.yaml, api/ and third_party/proto.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / ".venv" / "bin" / "buf"
CHECK = ROOT / "scripts" / "buf-breaking.sh"
REBASELINE = ROOT / "scripts" / "api-baseline.sh"
RELEASE_SERVICE = Path("proto/tpf/registry/v1/release_service.proto")
RENUMBERED = (
    "  // Release to activate. Required.\n"
    "  string release_version = 3 [(google.api.field_behavior) = REQUIRED];"
)
# buf's message (FILE rules: FIELD_NO_DELETE) for a field moved to another number.
BUF_SAYS = (
    'Previously present field "3" with name "release_version" on message "ActivateReleaseRequest"'
    " was deleted."
)


@dataclass(frozen=True)
class Outcome:
    returncode: int
    output: str


class ProtoRepo:
    """A git repository with the project's contracts, where a test commits its edits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for name in ("proto", "api", "third_party/proto"):
            shutil.copytree(ROOT / name, path / name)
        shutil.copy2(ROOT / "buf.yaml", path / "buf.yaml")
        self.git("init", "-q", "-b", "main")
        self.commit("the released API")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def edit(self, relative: Path, old: str, new: str) -> None:
        path = self.path / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} not found once in {relative}"
        path.write_text(text.replace(old, new))

    def check(self) -> Outcome:
        return self._run(CHECK)

    def rebaseline(self) -> None:
        assert self._run(REBASELINE).returncode == 0

    def _run(self, script: Path) -> Outcome:
        done = subprocess.run(
            [str(script), str(self.path)],
            env={"PATH": "/usr/bin:/bin", "BUF": str(BUF), "HOME": str(self.path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Outcome(done.returncode, done.stdout + done.stderr)


@pytest.fixture
def repo(tmp_path: Path) -> ProtoRepo:
    return ProtoRepo(tmp_path / "repo")


def renumber_release_version(repo: ProtoRepo) -> None:
    repo.edit(RELEASE_SERVICE, RENUMBERED, RENUMBERED.replace("= 3", "= 7"))


def add_a_field(repo: ProtoRepo) -> None:
    repo.edit(
        RELEASE_SERVICE,
        "  string reason = 4;\n",
        "  string reason = 4;\n  // Who asked for the activation.\n  string requested_by = 5;\n",
    )


def test_the_project_as_committed_passes() -> None:
    done = subprocess.run(
        [str(CHECK)], capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"}
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_committed_breaking_change_fails_with_bufs_message(repo: ProtoRepo) -> None:
    renumber_release_version(repo)
    repo.commit("renumber ActivateReleaseRequest.release_version")
    outcome = repo.check()
    assert outcome.returncode == 100, outcome.output
    assert BUF_SAYS in outcome.output
    assert "breaking change against the released API (api/baseline.binpb)" in outcome.output
    assert "breaking change against" in outcome.output.split("api/baseline.binpb)")[1]


def test_an_uncommitted_breaking_change_fails_too(repo: ProtoRepo) -> None:
    renumber_release_version(repo)
    outcome = repo.check()
    assert outcome.returncode == 100, outcome.output
    assert BUF_SAYS in outcome.output


def test_a_new_field_passes(repo: ProtoRepo) -> None:
    add_a_field(repo)
    repo.commit("ActivateReleaseRequest.requested_by")
    outcome = repo.check()
    assert outcome.returncode == 0, outcome.output
    assert "no breaking change against api/baseline.binpb" in outcome.output
    assert "(before the last proto change)" in outcome.output


def test_removing_a_field_added_since_the_baseline_fails_against_the_previous_change(
    repo: ProtoRepo,
) -> None:
    """The baseline never had the field; the commit before the removal did."""
    add_a_field(repo)
    repo.commit("ActivateReleaseRequest.requested_by")
    repo.edit(
        RELEASE_SERVICE, "  // Who asked for the activation.\n  string requested_by = 5;\n", ""
    )
    repo.commit("drop requested_by again")
    outcome = repo.check()
    assert outcome.returncode == 100, outcome.output
    assert "no breaking change against api/baseline.binpb" in outcome.output
    assert (
        'Previously present field "5" with name "requested_by" on message "ActivateReleaseRequest"'
        " was deleted."
    ) in outcome.output


def test_an_agreed_break_committed_with_a_new_baseline_passes(repo: ProtoRepo) -> None:
    renumber_release_version(repo)
    repo.rebaseline()
    repo.commit("api baseline: release_version renumbered, agreed for v2")
    outcome = repo.check()
    assert outcome.returncode == 0, outcome.output
    assert "an agreed break" in outcome.output
    # The next proto change is checked against that commit again.
    repo.edit(RELEASE_SERVICE, RENUMBERED.replace("= 3", "= 7"), RENUMBERED)
    repo.commit("renumber it back without a new baseline")
    outcome = repo.check()
    assert outcome.returncode == 100, outcome.output
