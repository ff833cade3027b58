"""Rendering deploy/k8s with `kubectl kustomize`, alone or composed with components.

make test installs kubectl (`make system-deps`); elsewhere the tests that render skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "k8s"
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

Document = dict[str, Any]


def load_all(text: str) -> list[Document]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def render(directory: Path) -> list[Document]:
    """What `kubectl kustomize <directory>` renders."""
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return load_all(done.stdout)


def compose(
    workdir: Path,
    *,
    namespace: str,
    resources: Sequence[str],
    components: Sequence[str] = (),
    patches: Sequence[Document] = (),
) -> list[Document]:
    """Render an overlay of the operator's, written in `workdir`: `resources` and `components`
    are paths under deploy/k8s, `patches` inline documents.

    Components join the overlay that sets the namespace, as their comments say (references to
    the base's generated config maps resolve only within one namespace).
    """

    # Kustomize refuses absolute paths: reach the tree relatively from workdir.
    def relative(path: str) -> str:
        return os.path.relpath(DEPLOY / path, workdir)

    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": [relative(path) for path in resources],
        "components": [relative(path) for path in components],
        "patches": [{"patch": yaml.safe_dump(patch)} for patch in patches],
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    return render(workdir)


def kustomization_dirs(kind: str) -> list[str]:
    """Directories under deploy/k8s holding a kustomization of `kind` (Kustomization or
    Component), relative to deploy/k8s."""
    found = []
    for path in sorted(DEPLOY.rglob("kustomization.yaml")):
        spec = yaml.safe_load(path.read_text())
        if spec.get("kind", "Kustomization") == kind:
            found.append(path.parent.relative_to(DEPLOY).as_posix())
    return found
