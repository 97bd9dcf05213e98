from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from harness.errors import SuiteError
from harness.suite import DEFAULT_SUITE, load_suite, parse_suite


def raw() -> dict:
    return tomllib.loads(DEFAULT_SUITE.read_text())


def test_default_suite_loads_with_both_tasks():
    s = load_suite()
    assert {"startup", "sum_squares"} <= set(s.tasks)
    assert s.data_image in s.images
    assert [i.name for i in s.build_order(["python"])] == ["runner", "python"]


def test_quick_profile_cases_cover_every_impl():
    s = load_suite()
    cases = s.cases(s.profiles["quick"])
    ids = {c.case_id for c in cases}
    assert "startup/py-bare/-" in ids
    assert "sum_squares/rs-scalar/100000" in ids
    # One case per implementation and test size (a thread sweep: one per core, here 1).
    expected = sum(len(t.impls) * max(1, len(t.sizes.get("test", ()))) for t in s.tasks.values())
    assert len(cases) == expected


def test_argv_fills_placeholders_without_a_shell():
    s = load_suite()
    case = next(c for c in s.cases(s.profiles["quick"]) if c.impl.name == "py-loop")
    argv = case.argv(iters=4)
    assert argv[-4:] == ["--input", "/data/sum_squares/n100000.i64", "--iters", "4"]
    assert case.expected_checksum() == "8905216956603"


def test_unknown_task_and_image_are_named():
    s = load_suite()
    with pytest.raises(
        SuiteError, match=r"unknown task .nope.\. Known tasks: batch_scoring, concurrency"
    ):
        s.cases(s.profiles["quick"], tasks=["nope"])
    with pytest.raises(SuiteError, match="unknown image 'nope'"):
        s.cases(s.profiles["quick"], images=["nope"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(schema=99), "schema 99"),
        (lambda r: r["tasks"]["sum_squares"]["reference"].pop("100000"), "no reference checksum"),
        (lambda r: r["tasks"]["startup"].update(baseline="py-x"), "baseline 'py-x'"),
        (lambda r: r["tasks"]["startup"]["impls"][0].update(image="nope"), "image 'nope'"),
        (lambda r: r["tasks"]["startup"].update(kind="both"), "kind must be"),
        (lambda r: r["tasks"]["startup"]["impls"][0].update(name="Bad Name"), "not allowed"),
        (
            lambda r: r["images"]["runner"].update(args={"X": "{image:python}"}),
            "cycle",
        ),
        (lambda r: r["tasks"]["sum_squares"]["input"].update(file="../x"), "relative path"),
        (lambda r: r["profiles"]["quick"].update(runs=0), ">= 1"),
    ],
)
def test_invalid_suites_are_refused_with_a_reason(mutate, message):
    r = raw()
    mutate(r)
    with pytest.raises(SuiteError, match=message):
        parse_suite(r, Path("x.toml"), "0")


def test_unreadable_suite_file(tmp_path):
    with pytest.raises(SuiteError, match="cannot read suite file"):
        load_suite(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("schema = [")
    with pytest.raises(SuiteError, match="not valid TOML"):
        load_suite(bad)


def test_twin_cases_make_each_impl_a_task_of_two_identical_twins():
    from harness.suite import twin_cases

    s = load_suite()
    cases = s.cases(s.profiles["default"], ["sum_squares"], ["rust"])
    twins = twin_cases(cases)
    assert len(twins) == 2 * len(cases)
    by_id = {c.case_id: c for c in twins}
    a = by_id["sum_squares.rs-scalar/rs-scalar.a/1000000"]
    b = by_id["sum_squares.rs-scalar/rs-scalar.b/1000000"]
    assert a.task is b.task
    assert a.task.baseline == "rs-scalar.a"
    assert (
        a.argv(5)
        == b.argv(5)
        == next(c.argv(5) for c in cases if c.impl.name == "rs-scalar" and c.size == 1_000_000)
    )
    assert a.impl.image == b.impl.image == "rust"
    assert a.expected_checksum() == b.expected_checksum() == "89536216870674"
    # Every original case has exactly its two twins, in the original order.
    assert [c.case_id for c in twins[:2]] == [
        f"sum_squares.{cases[0].impl.name}/{cases[0].impl.name}{x}/{cases[0].size}"
        for x in (".a", ".b")
    ]
