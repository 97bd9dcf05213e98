from __future__ import annotations

import pytest

from harness.errors import UsageError
from harness.host import checks, choose_cpuset, fingerprint, format_cpu_list, parse_cpu_list


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0", [0]), ("0-3", [0, 1, 2, 3]), ("0-1,4,6-7", [0, 1, 4, 6, 7]), (" 2 , 0 ", [0, 2])],
)
def test_parse_and_format_cpu_lists(text, cpus):
    assert parse_cpu_list(text) == cpus
    assert parse_cpu_list(format_cpu_list(cpus)) == cpus


def test_format_compresses_ranges():
    assert format_cpu_list([3, 0, 1, 2, 8, 10, 11]) == "0-3,8,10-11"


@pytest.mark.parametrize("text", ["a", "3-1", "1-x"])
def test_bad_cpu_list(text):
    with pytest.raises(UsageError, match="is not a CPU list"):
        parse_cpu_list(text)


def test_choose_cpuset_takes_distinct_high_cores():
    assert choose_cpuset(1, [0, 1]) == [1]
    assert choose_cpuset(2, [0, 1]) == [0, 1]
    with pytest.raises(UsageError, match=r"--cpus 3 exceeds the 2 cores this host offers \(0-1\)"):
        choose_cpuset(3, [0, 1])
    with pytest.raises(UsageError, match="--cpus 0 is not allowed"):
        choose_cpuset(0, [0, 1])


def test_fingerprint_reads_through_a_root(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("model name\t: Test CPU 9000\n")
    (tmp_path / "proc/loadavg").write_text("3.50 1.0 0.5 2/100 1\n")
    d = tmp_path / "sys/devices/system/cpu/cpu0"
    (d / "cpufreq").mkdir(parents=True)
    (d / "cpufreq/scaling_governor").write_text("powersave\n")
    (d / "topology").mkdir()
    (d / "topology/thread_siblings_list").write_text("0,4\n")
    fp = fingerprint([0], root=tmp_path)
    assert fp["cpu_model"] == "Test CPU 9000"
    assert fp["governor"] == "powersave"
    warnings = " ".join(checks(fp, 1))
    assert "governor is 'powersave'" in warnings
    assert "looks busy" in warnings
    # CPU 0's sibling (4) is outside the cpuset: nothing shares a core.
    assert "SMT" not in warnings


def test_runnable_threads_beyond_the_reader_are_a_warning(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/stat").write_text("cpu  1 2 3\nprocs_running 4\nprocs_blocked 0\n")
    fp = fingerprint([0], root=tmp_path)
    assert fp["runnable_threads"] == 4
    assert any("3 other threads were runnable" in w for w in checks(fp, 1))
    (tmp_path / "proc/stat").write_text("procs_running 1\n")
    fp = fingerprint([0], root=tmp_path)
    assert not any("runnable" in w for w in checks(fp, 1))


def test_engine_checks_warn_about_a_slow_storage_driver():
    from harness.host import engine_checks

    [w] = engine_checks({"storage_driver": "fuse-overlayfs"})
    assert w.startswith("Docker's storage driver is fuse-overlayfs: every file a program opens")
    assert engine_checks({"storage_driver": "overlay2"}) == []
    assert engine_checks({}) == []


def _topology(root, siblings: dict[int, str]) -> None:
    """A fake /sys with each CPU's thread_siblings_list."""
    for cpu, text in siblings.items():
        d = root / f"sys/devices/system/cpu/cpu{cpu}/topology"
        d.mkdir(parents=True)
        (d / "thread_siblings_list").write_text(f"{text}\n")


# Two physical cores with two hardware threads each, numbered as on most AMD hosts (threads of
# a core adjacent) and as on most Intel hosts (the second threads after all the first ones).
ADJACENT = {0: "0-1", 1: "0-1", 2: "2-3", 3: "2-3"}
SPLIT = {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"}
NO_SMT = {0: "0", 1: "1", 2: "2", 3: "3"}


@pytest.mark.parametrize(
    ("layout", "n", "chosen"),
    [
        (ADJACENT, 1, [3]),
        (ADJACENT, 2, [1, 3]),  # one thread of each core, not both threads of core 1
        (ADJACENT, 3, [1, 2, 3]),  # more than the physical cores: siblings only then
        (ADJACENT, 4, [0, 1, 2, 3]),
        (SPLIT, 2, [2, 3]),
        (SPLIT, 3, [1, 2, 3]),
        (NO_SMT, 1, [3]),
        (NO_SMT, 2, [2, 3]),
        (NO_SMT, 3, [1, 2, 3]),
    ],
)
def test_choose_cpuset_prefers_one_thread_per_physical_core(tmp_path, layout, n, chosen):
    _topology(tmp_path, layout)
    assert choose_cpuset(n, [0, 1, 2, 3], root=tmp_path) == chosen


def test_choose_cpuset_without_topology_takes_the_highest_cpus(tmp_path):
    assert choose_cpuset(2, [0, 1, 2, 3], root=tmp_path) == [2, 3]


def test_choose_cpuset_only_uses_available_cpus(tmp_path):
    _topology(tmp_path, ADJACENT)
    # CPU 3 is not ours (affinity): core 2-3 offers only CPU 2.
    assert choose_cpuset(2, [0, 1, 2], root=tmp_path) == [1, 2]
    assert choose_cpuset(3, [0, 1, 2], root=tmp_path) == [0, 1, 2]


def _smt_warnings(tmp_path, layout, cpuset):
    _topology(tmp_path, layout)
    fp = fingerprint(cpuset, root=tmp_path)
    return [w for w in checks(fp, len(cpuset)) if "SMT" in w]


@pytest.mark.parametrize(
    ("layout", "cpuset", "warned"),
    [
        (ADJACENT, [2, 3], True),
        (ADJACENT, [1, 3], False),  # each CPU's sibling is outside the cpuset: no sharing
        (ADJACENT, [3], False),
        (ADJACENT, [0, 1, 2, 3], True),
        (SPLIT, [1, 3], True),
        (SPLIT, [2, 3], False),
        (NO_SMT, [0, 1, 2, 3], False),
    ],
)
def test_smt_warning_only_when_two_threads_of_one_core_are_in_the_cpuset(
    tmp_path, layout, cpuset, warned
):
    warnings = _smt_warnings(tmp_path, layout, cpuset)
    assert bool(warnings) == warned, warnings
    if warned:
        [w] = warnings
        assert w.startswith("the cpuset includes SMT siblings (CPUs ")
        assert w.endswith("share a physical core): two benchmark threads may share a core.")


def test_smt_warning_names_the_sharing_cpus(tmp_path):
    [w] = _smt_warnings(tmp_path, SPLIT, [0, 1, 2, 3])
    assert "(CPUs 0,2 and 1,3 share a physical core)" in w


def test_smt_warning_from_a_stored_manifest():
    # A manifest read back from JSON has string keys; the check only needs the values.
    fp = {"cpuset": "2-3", "smt_siblings": {"2": "2-3", "3": "2-3"}, "cores_available": "0-3"}
    assert any("SMT siblings" in w for w in checks(fp, 2))
    fp = {"cpuset": "1,3", "smt_siblings": {"1": "0-1", "3": "2-3"}, "cores_available": "0-3"}
    assert not any("SMT" in w for w in checks(fp, 2))
