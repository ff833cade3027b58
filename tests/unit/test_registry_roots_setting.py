"""TPF_REGISTRY_ARTIFACT_ROOTS: parsing, the default, and the resolved-path check."""

from __future__ import annotations

from pathlib import Path

import pytest

from tpf_config import ConfigError, load_settings
from tpf_errors import PermissionDenied
from tpf_registry.artifacts.roots import ReadableRoots, parse_roots
from tpf_registry.settings import RegistrySettings


def test_roots_are_absolute_directories_separated_by_colons() -> None:
    assert parse_roots("/a:/b/c::") == (Path("/a"), Path("/b/c"))
    with pytest.raises(ValueError, match="not an absolute directory"):
        parse_roots("/a:relative/dir")


def test_the_default_is_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TPF_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TPF_REGISTRY_ARTIFACT_ROOTS", raising=False)
    assert load_settings(RegistrySettings).artifact_roots() == (tmp_path / "data",)
    monkeypatch.setenv("TPF_REGISTRY_ARTIFACT_ROOTS", f"{tmp_path}/x:{tmp_path}/y")
    assert load_settings(RegistrySettings).artifact_roots() == (tmp_path / "x", tmp_path / "y")


def test_a_relative_root_stops_the_registry_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TPF_REGISTRY_ARTIFACT_ROOTS", "releases")
    with pytest.raises(ConfigError, match="TPF_REGISTRY_ARTIFACT_ROOTS"):
        load_settings(RegistrySettings)


def test_paths_are_resolved_before_the_check(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    roots = ReadableRoots([root])
    assert roots.check(root / "sub" / "a.json", field="f") == root / "sub" / "a.json"
    for path in (root / ".." / "a.json", tmp_path / "rootless" / "a.json", Path("/etc/passwd")):
        with pytest.raises(PermissionDenied) as refused:
            roots.check(path, field="f")
        assert refused.value.reason == "PATH_NOT_ALLOWED"
        assert refused.value.metadata == {"field": "f"}
    (root / "escape").symlink_to(tmp_path)
    with pytest.raises(PermissionDenied):
        roots.check(root / "escape" / "a.json", field="f")
