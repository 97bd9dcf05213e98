"""When is a program warm? One rule, from the data, for process runs and for iterations.

A series has settled when `k` consecutive values are within a factor `1 + band` of each other
(the slowest at most (1 + band) times the fastest). A first run in a fresh container, a cold
page cache, a JIT or lazily bound libraries all make the first values slow and falling; once `k`
in a row agree, the program is running as it will keep running.

- Process runs (the start-up task): the runner applies the rule online, after each warm-up run,
  to the last `k` warm-up runs, with at least `warmup` and at most `warmup_cap` runs. It cannot
  know the future, so the `k` runs that show the settling are spent as warm-up too.
- In-process iterations (kernel tasks): the program reports every iteration, so the rule is
  applied afterwards: the warm-up is the fewest leading iterations after which the next `k`
  agree; those `k` are measured. With few iterations, `k` shrinks to leave at least one
  iteration of warm-up possible (never below 2). When no window agrees, the profile's fixed
  `warmup` count is dropped, as before the rule.
"""

from __future__ import annotations

from collections.abc import Sequence


def agree(window: Sequence[float], band: float) -> bool:
    """Whether every value of `window` is within a factor 1 + `band` of the smallest."""
    if not window:
        return False
    lo = min(window)
    return lo > 0 and max(window) <= (1 + band) * lo


def online_warmup(values: Sequence[float], k: int, band: float, least: int, cap: int) -> int:
    """How many warm-up runs the runner makes for a program whose runs take `values` (in
    order): it stops after run n once n >= `least` and the last `k` agree, or at `cap`. The
    runner's own rule (rust/runner), for tests and simulations."""
    for n in range(1, len(values) + 1):
        if n >= cap:
            return cap
        if n >= least and n >= k and agree(values[n - k : n], band):
            return n
    return min(len(values), cap)


def iteration_warmup(
    iters: Sequence[float], k: int, band: float, fallback: int
) -> tuple[int, bool]:
    """(leading iterations to drop, whether the rule found them) for one process run's
    in-process iterations. See the module docstring."""
    n = len(iters)
    if n < 2:
        return 0, False
    k = max(2, min(k, n - 1))
    for start in range(n - k + 1):
        if agree(iters[start : start + k], band):
            return start, True
    return min(fallback, n - 1), False
