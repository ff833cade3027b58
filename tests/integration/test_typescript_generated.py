"""The committed TypeScript code (clients/typescript/src/gen) is what buf.gen.yaml generates from
proto/ now: a proto change committed without `make proto` fails here, not in a user's build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.typescript import prepare_package

ROOT = Path(__file__).resolve().parents[2]
TS_GEN = "clients/typescript/src/gen"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_committed_typescript_code_is_what_buf_gen_yaml_generates(tmp_path: Path) -> None:
    prepare_package()  # protoc-gen-es comes from clients/typescript/node_modules
    template = yaml.safe_load((ROOT / "buf.gen.yaml").read_text())
    template["plugins"] = [p for p in template["plugins"] if p["out"] == TS_GEN]
    assert len(template["plugins"]) == 1
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "buf"),
            "generate",
            "--template",
            json.dumps(template),
            "--output",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    generated, committed = _files(tmp_path / TS_GEN), _files(ROOT / TS_GEN)
    assert sorted(generated) == sorted(committed), "run `make proto` and commit clients/typescript"
    stale = [name for name in generated if generated[name] != committed[name]]
    assert not stale, f"run `make proto` and commit clients/typescript: {stale} differ"
