from __future__ import annotations

import json

import pytest

from harness.errors import BundleError, UsageError
from harness.store import (
    Bundle,
    append_jsonl,
    atomic_write,
    check_writable,
    host_label,
    latest_bundle,
    new_run_id,
    read_jsonl,
)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    p = tmp_path / "a.json"
    atomic_write(p, "one")
    atomic_write(p, "two")
    assert p.read_text() == "two"
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]


def test_torn_last_line_is_ignored_but_a_torn_middle_is_an_error(tmp_path):
    p = tmp_path / "s.jsonl"
    append_jsonl(p, [{"a": 1}, {"a": 2}])
    with p.open("a") as f:
        f.write('{"a": 3')  # an append cut short by a crash
    assert read_jsonl(p) == [{"a": 1}, {"a": 2}]
    p.write_text('{"a": 1}\n{"a\n{"a": 2}\n')
    with pytest.raises(BundleError, match=":2 is not valid JSON"):
        read_jsonl(p)


def test_bundle_round_trip_and_validation(tmp_path):
    run_id = new_run_id()
    b = Bundle.create(tmp_path, "host1", run_id, {"run_id": run_id, "status": "incomplete"})
    b.update_manifest(status="complete")
    again = Bundle.open(b.path)
    assert again.manifest()["status"] == "complete"
    assert again.manifest()["schema"] == 1
    assert latest_bundle(tmp_path) == b.path
    with pytest.raises(BundleError, match="not a results bundle"):
        Bundle.open(tmp_path)
    (b.path / "manifest.json").write_text(json.dumps({"schema": 7}))
    with pytest.raises(BundleError, match="bundle schema 7"):
        Bundle.open(b.path)
    with pytest.raises(BundleError, match="outside the bundle"):
        b.write("../escape.md", "x")


def test_latest_bundle_when_there_is_none(tmp_path):
    with pytest.raises(BundleError, match="no results bundle under"):
        latest_bundle(tmp_path)


def test_host_label_is_safe():
    assert host_label("my host/../x") == "my-host-..-x"
    assert "/" not in host_label("a/b")
    assert host_label("///") == "host"


def test_results_path_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UsageError, match="is not writable"):
        check_writable(f)
