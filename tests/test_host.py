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
    assert "SMT siblings" in warnings


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
