"""Shared pieces of the serving_api servers (standard library only): the model and the CLI.

The model is the batch_scoring task's logistic regression: 32 weights ``w_j = sin(j + 1)``,
bias 0.1, ``score = 1 / (1 + exp(-(w·x + b)))``. Every server listens on 127.0.0.1 only (the
load generator shares the server container's network namespace) and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from collections.abc import Sequence

N_FEATURES = 32
BIAS = 0.1
WEIGHTS = tuple(math.sin(j + 1) for j in range(N_FEATURES))
HOST = "127.0.0.1"


def logistic_score(x: Sequence[float]) -> float:
    """The score of one row of ``N_FEATURES`` floats (the caller checks the length)."""
    z = BIAS
    for w, v in zip(WEIGHTS, x, strict=True):
        z += w * v
    try:
        return 1.0 / (1.0 + math.exp(-z))
    except OverflowError:  # z below about -709: the score underflows to 0, as in C and Rust
        return 0.0


def fail(message: str) -> NoReturn:
    """Print one ``Error: ...`` line on stderr and exit with status 1."""
    print(f"Error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one ``Error: ...`` line (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"Error: {self.prog}: {message}", file=sys.stderr, flush=True)
        sys.exit(2)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 1..65535, got {value}")
    return value


def server_parser(description: str | None) -> argparse.ArgumentParser:
    """A parser with ``--port P`` (required); a server adds its own options."""
    parser = _Parser(description=description)
    parser.add_argument("--port", type=_port, required=True, help="TCP port on 127.0.0.1")
    return parser
