"""The README and docs/ stand on their own: no pointers to material readers do not have, and no
relative link to a file or heading that does not exist (headings by GitHub's anchor rules)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

# Material outside the repository that older text pointed at.
FORBIDDEN = ("../shared", "TPF_WIRE", "DESIGN §", "DESIGN.md", "CONVENTIONS.md")

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`+[^`]*`+")
# `[text](target "title")`; the text may hold one level of brackets (`[see [x]](y)`).
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# What GitHub drops when it turns a heading into an anchor: anything but letters, digits,
# `_`, `-` and spaces (which become `-`).
_ANCHOR_DROP = re.compile(r"[^\w\- ]", re.UNICODE)


def _prose_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def _heading_text(raw: str) -> str:
    """A heading as GitHub renders it to text: code spans and link targets unwrapped."""
    text = re.sub(r"`+([^`]*)`+", r"\1", raw)
    return re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to `-`."""
    return _ANCHOR_DROP.sub("", _heading_text(heading).strip().lower()).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    """Every anchor GitHub gives `path`'s headings (repeats get `-1`, `-2`, ...)."""
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for _, line in _prose_lines(path):
        match = _HEADING.match(line)
        if match is None:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def links_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line, target) of every inline and reference link in prose."""
    for number, line in _prose_lines(path):
        reference = _REFERENCE_LINK.match(line)
        if reference is not None:
            yield number, reference.group(1)
            continue
        for match in _INLINE_LINK.finditer(_INLINE_CODE.sub("", line)):
            yield number, match.group(1)


def broken_link(source: Path, target: str) -> str | None:
    """Why `target`, linked from `source`, leads nowhere; None if it resolves."""
    if _SCHEME.match(target) or target.startswith("//"):
        return None  # absolute URLs are not checked here
    path_part, _, anchor = target.partition("#")
    destination = (source.parent / unquote(path_part)).resolve() if path_part else source
    if not destination.exists():
        return f"{path_part} does not exist"
    if anchor and destination.suffix == ".md" and unquote(anchor) not in anchors_of(destination):
        return f"{path_part or source.name} has no heading with anchor #{anchor}"
    return None


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pointer_to_material_outside_the_repository(doc: Path) -> None:
    found = [
        f"{doc.relative_to(ROOT)}:{number}: {needle!r}"
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1)
        for needle in FORBIDDEN
        if needle in line
    ]
    assert found == [], "point at docs/tpf-compatibility.md or docs/design.md instead"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = [
        f"{doc.relative_to(ROOT)}:{number}: ({target}) {why}"
        for number, target in links_of(doc)
        if (why := broken_link(doc, target)) is not None
    ]
    assert broken == []


def test_anchors_follow_github_rules() -> None:
    assert github_anchor("4.1 Submit an execution") == "41-submit-an-execution"
    assert github_anchor("12. TPF's demo client and scripts") == "12-tpfs-demo-client-and-scripts"
    assert github_anchor("Compatibility: what `make test` refuses") == (
        "compatibility-what-make-test-refuses"
    )
    assert github_anchor("Workers and the Python SDK (`tpf_worker`)") == (
        "workers-and-the-python-sdk-tpf_worker"
    )


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """A broken file link, a missing heading and a good anchor are told apart."""
    (tmp_path / "a.md").write_text(
        "# A title\n\n## 2.1 Some section\n\n```\n# not a heading\n```\n"
    )
    source = tmp_path / "b.md"
    source.write_text("")
    assert broken_link(source, "a.md#21-some-section") is None
    assert broken_link(source, "a.md#not-a-heading") is not None
    assert broken_link(source, "missing.md") is not None
    assert broken_link(source, "https://example.com/x.md#y") is None
