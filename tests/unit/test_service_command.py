"""The command line of a service with a database: `serve` (default) or `migrate`."""

from __future__ import annotations

import pytest

from tpf_store import parse_service_command


def test_no_command_serves() -> None:
    assert parse_service_command("tpf-coordinator", []) == "serve"


@pytest.mark.parametrize("name", ["serve", "migrate"])
def test_a_named_command_is_chosen(name: str) -> None:
    assert parse_service_command("tpf-registry", [name]) == name


def test_an_unknown_command_is_refused_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_service_command("tpf-registry", ["migrat"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "usage: tpf-registry" in err
    assert "invalid choice: 'migrat'" in err
