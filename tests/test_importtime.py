"""harness.importtime: the argv that profiles imports and the parser of CPython's
`-X importtime` output, on output captured from CPython 3.11."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.importtime import importtime_argv, parse_importtime

# `python3 -I -S -X importtime -c "import json, csv"` (CPython 3.11.7), stderr as captured.
JSON_CSV = """\
import time: self [us] | cumulative | imported package
import time:       285 |        285 |   _io
import time:        53 |         53 |   marshal
import time:       611 |        611 |   posix
import time:       582 |       1529 | _frozen_importlib_external
import time:       318 |        318 |   time
import time:      5091 |       5409 | zipimport
import time:        83 |         83 |     _codecs
import time:      3150 |       3232 |   codecs
import time:      4065 |       4065 |   encodings.aliases
import time:      5787 |      13082 | encodings
import time:      2155 |       2155 | encodings.utf_8
import time:      3532 |       3532 | _signal
import time:        55 |         55 |     _abc
import time:       215 |        269 |   abc
import time:       309 |        578 | io
import time:       601 |        601 |         types
import time:       173 |        173 |           _operator
import time:       659 |        831 |         operator
import time:      4498 |       4498 |             _collections_abc
import time:      1184 |       1184 |             itertools
import time:       283 |        283 |             keyword
import time:       315 |        315 |             reprlib
import time:       120 |        120 |             _collections
import time:      3233 |       9630 |           collections
import time:        93 |         93 |           _functools
import time:      4887 |      14609 |         functools
import time:      9747 |      25787 |       enum
import time:       365 |        365 |         _sre
import time:      1875 |       1875 |           re._constants
import time:      2382 |       4257 |         re._parser
import time:       798 |        798 |         re._casefix
import time:      2611 |       8029 |       re._compiler
import time:       357 |        357 |       copyreg
import time:      2320 |      36491 |     re
import time:      2390 |       2390 |       _json
import time:      5879 |       8269 |     json.scanner
import time:      1978 |      46737 |   json.decoder
import time:      2943 |       2943 |   json.encoder
import time:       720 |      50399 | json
import time:       806 |        806 |   _csv
import time:      2014 |       2820 | csv
"""

# Lines of `python3 -X importtime -c "import pandas"`: the header, the end of numpy's imports
# (nested under pandas) and pandas's last ones, with a warning the program printed between them.
PANDAS = """\
import time: self [us] | cumulative | imported package
import time:       285 |        285 |       numpy.lib.mixins
import time:       125 |        125 |       numpy.lib.npyio
import time:       419 |        419 |         numpy.lib._scimath_impl
import time:       125 |        543 |       numpy.lib.scimath
import time:       141 |        141 |       numpy.lib.stride_tricks
import time:       546 |      80561 |     numpy.lib
import time:      1803 |       1803 |     numpy._array_api_info
import time:      2335 |     268585 |   numpy
import time:       411 |        411 |     dateutil._version
import time:      1048 |       1459 |   dateutil
/usr/lib/python3/dist-packages/pandas/__init__.py:1: UserWarning: something
import time:      7410 |       8764 |     pandas.io.pytables
import time:      1899 |       1899 |     pandas.io.spss
import time:      1701 |       1701 |     pandas.io.sql
import time:      6544 |       6544 |     pandas.io.xml
import time:      1194 |      33648 |   pandas.io.api
import time:       281 |        281 |   pandas.util._tester
import time:       142 |        142 |   pandas._version_meson
import time:       794 |     993280 | pandas
"""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python3", "-c", "import numpy"], ["python3", "-X", "importtime", "-c", "import numpy"]),
        (["python", "prog.py"], ["python", "-X", "importtime", "prog.py"]),
        (
            ["/usr/local/bin/python3.13", "-I", "-S", "-c", "pass"],
            ["/usr/local/bin/python3.13", "-X", "importtime", "-I", "-S", "-c", "pass"],
        ),
        (["python3.13t", "-c", "pass"], ["python3.13t", "-X", "importtime", "-c", "pass"]),
        # Already profiling: unchanged, not twice.
        (
            ["python3", "-X", "importtime", "-c", "pass"],
            ["python3", "-X", "importtime", "-c", "pass"],
        ),
        (["pypy3", "-c", "pass"], None),
        (["/app/rs-hello"], None),
        (["python3-config"], None),
        (["sh", "-c", "python3 -c pass"], None),
        ([], None),
    ],
)
def test_importtime_argv(argv: list[str], expected: list[str] | None) -> None:
    assert importtime_argv(argv) == expected


def test_importtime_argv_copies_a_tuple() -> None:
    argv = ("python3", "-c", "pass")
    out = importtime_argv(argv)
    assert out == ["python3", "-X", "importtime", "-c", "pass"]
    assert argv == ("python3", "-c", "pass")


def test_parse_importtime_of_a_captured_run() -> None:
    found = parse_importtime(JSON_CSV)
    assert found["modules"] == 41  # every line but the header
    assert found["total_us"] == 79522
    assert [e["module"] for e in found["top_self"][:5]] == [
        "enum",
        "json.scanner",
        "encodings",
        "zipimport",
        "functools",
    ]
    assert found["top_self"][0] == {
        "module": "enum",
        "self_us": 9747,
        "cumulative_us": 25787,
        "depth": 3,
    }
    assert len(found["top_self"]) == 10
    assert found["top_level"] == [
        {"module": "json", "cumulative_us": 50399},
        {"module": "encodings", "cumulative_us": 13082},
        {"module": "zipimport", "cumulative_us": 5409},
        {"module": "_signal", "cumulative_us": 3532},
        {"module": "csv", "cumulative_us": 2820},
        {"module": "encodings.utf_8", "cumulative_us": 2155},
        {"module": "_frozen_importlib_external", "cumulative_us": 1529},
        {"module": "io", "cumulative_us": 578},
    ]
    json.dumps(found, allow_nan=False)  # JSON-able, as the manifest needs


def test_parse_importtime_depths_top_and_foreign_lines() -> None:
    found = parse_importtime(PANDAS, top=3)
    assert found["modules"] == 18  # the warning line is not an import
    assert found["total_us"] == 27203
    assert [(e["module"], e["self_us"], e["depth"]) for e in found["top_self"]] == [
        ("pandas.io.pytables", 7410, 2),
        ("pandas.io.xml", 6544, 2),
        ("numpy", 2335, 1),
    ]
    assert found["top_level"] == [{"module": "pandas", "cumulative_us": 993280}]
    by_name = {e["module"]: e for e in parse_importtime(PANDAS, top=100)["top_self"]}
    assert by_name["numpy.lib._scimath_impl"]["depth"] == 4
    assert by_name["pandas"]["depth"] == 0


def test_parse_importtime_of_nothing() -> None:
    empty = {"total_us": 0, "modules": 0, "top_self": [], "top_level": []}
    assert parse_importtime("") == empty
    assert parse_importtime("Traceback (most recent call last):\nImportError: no numpy\n") == empty
    assert parse_importtime(JSON_CSV, top=0)["top_self"] == []
    assert parse_importtime(JSON_CSV, top=0)["modules"] == 41


def test_parse_importtime_of_this_interpreter() -> None:
    """The format of the CPython running the tests (what the images run may be newer)."""
    argv = importtime_argv(["python3", "-I", "-S", "-c", "import json"])
    assert argv is not None
    done = subprocess.run(
        [sys.executable, *argv[1:]], capture_output=True, text=True, check=True, timeout=60
    )
    found = parse_importtime(done.stderr)
    assert found["modules"] >= 3
    assert "json" in [e["module"] for e in found["top_level"]]
    assert found["total_us"] == sum(
        int(line.split("|")[0].split(":")[1])
        for line in done.stderr.splitlines()
        if line.split("|")[0].split(":")[-1].strip().isdigit()
    )
