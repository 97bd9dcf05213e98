"""Per-import cost of a Python program, from CPython's `-X importtime`.

`python3 -X importtime -c "import numpy"` writes one stderr line per module it imports, in the
order the imports finish (a module's own imports come before it):

    import time: self [us] | cumulative | imported package
    import time:       160 |        160 |   _io
    import time:       361 |        947 | _frozen_importlib_external

`self` is the module's own time in microseconds, `cumulative` adds the modules it imported, and
the package column is indented by two spaces per level of nesting. The interpreter's own start-up
imports (encodings, site, ...) are listed too: they are part of what a process pays.

Pure functions: no process is started here; the process kind runs the argv and keeps what
`parse_importtime` returns in the manifest (`kind_state.process.importtime`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

_INTERPRETER = re.compile(r"python(3(\.\d+)?t?)?")
# "import time:" self "|" cumulative "|" one space, two spaces per nesting level, the module.
_LINE = re.compile(r"^import time:\s*(\d+)\s*\|\s*(\d+)\s*\| ( *)(\S+)\s*$")


def importtime_argv(argv: Sequence[str]) -> list[str] | None:
    """`argv` with `-X importtime` right after the interpreter, when argv[0] is CPython
    (`python`, `python3`, `python3.N`, any directory); None for anything else."""
    if not argv or not _INTERPRETER.fullmatch(PurePath(argv[0]).name):
        return None
    rest = list(argv[1:])
    if any(pair == ("-X", "importtime") for pair in itertools.pairwise(rest)):
        return [argv[0], *rest]
    return [argv[0], "-X", "importtime", *rest]


def parse_importtime(stderr: str, top: int = 10) -> dict[str, Any]:
    """The import costs in `-X importtime` output (other lines are ignored), as JSON-able data:

    - `total_us`: the sum of every module's self time (all imports, nested included);
    - `modules`: how many modules were imported;
    - `top_self`: the `top` largest self times, largest first, each
      `{"module", "self_us", "cumulative_us", "depth"}` (depth 0: imported by the program or
      the interpreter's start-up itself);
    - `top_level`: the depth-0 imports by cumulative time, largest first, up to `top`, each
      `{"module", "cumulative_us"}`.

    Ties keep the order of the output."""
    entries: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if m is None:
            continue
        self_us, cumulative_us, indent, module = m.groups()
        entries.append(
            {
                "module": module,
                "self_us": int(self_us),
                "cumulative_us": int(cumulative_us),
                "depth": len(indent) // 2,
            }
        )
    n = max(0, top)
    by_self = sorted(entries, key=lambda e: -e["self_us"])[:n]
    top_level = sorted((e for e in entries if e["depth"] == 0), key=lambda e: -e["cumulative_us"])
    return {
        "total_us": sum(e["self_us"] for e in entries),
        "modules": len(entries),
        "top_self": by_self,
        "top_level": [
            {"module": e["module"], "cumulative_us": e["cumulative_us"]} for e in top_level[:n]
        ],
    }
