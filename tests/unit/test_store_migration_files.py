"""Parsing migration files: names, versions, checksums, the no-transaction marker."""

from __future__ import annotations

import hashlib

import pytest

from tpf_store import MigrationFileInvalid
from tpf_store.migrate import advisory_lock_key, parse_migration


def test_version_and_checksum_come_from_the_name_and_the_bytes() -> None:
    content = b"CREATE TABLE t (x int);\n"

    migration = parse_migration("0042_add_table.sql", content)

    assert migration.version == 42
    assert migration.file_name == "0042_add_table.sql"
    assert migration.checksum == hashlib.sha256(content).hexdigest()
    assert migration.is_transactional


def test_a_one_byte_edit_changes_the_checksum() -> None:
    before = parse_migration("0001_a.sql", b"CREATE TABLE t (x int);")
    after = parse_migration("0001_a.sql", b"CREATE TABLE t (x int); ")

    assert before.checksum != after.checksum


def test_the_marker_on_the_first_line_makes_a_file_non_transactional() -> None:
    marked = parse_migration(
        "0002_index.sql", b"-- tpf:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);\n"
    )
    marker_elsewhere = parse_migration(
        "0003_index.sql", b"-- an index\n-- tpf:no-transaction\nCREATE INDEX i2 ON t (x);\n"
    )

    assert not marked.is_transactional
    assert marker_elsewhere.is_transactional


@pytest.mark.parametrize(
    "file_name", ["1_short.sql", "0001-dash.sql", "0001_.sql", "0001_a.SQL", "abcd_x.sql"]
)
def test_misnamed_files_are_rejected(file_name: str) -> None:
    with pytest.raises(MigrationFileInvalid, match=r"NNNN_<what>\.sql"):
        parse_migration(file_name, b"SELECT 1;")


def test_non_utf8_files_are_rejected() -> None:
    with pytest.raises(MigrationFileInvalid, match="not UTF-8"):
        parse_migration("0001_a.sql", b"\xff\xfe")


def test_lock_keys_are_stable_bigints_distinct_per_component() -> None:
    registry = advisory_lock_key("registry")

    assert registry == advisory_lock_key("registry")
    assert registry != advisory_lock_key("coordinator")
    assert -(2**63) <= registry < 2**63
