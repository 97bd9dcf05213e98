"""parallel: strong scaling of a compute-bound reduction over P workers, in Python's idioms.

Usage: python3 parallel.py --impl loop|threads|processes|numpy-threads|numba --threads P
       --input PATH [--iters K]

The input is the sum_squares file (N little-endian int64 values in [0, 2^14)). Each value goes
through 8 rounds of the SplitMix64 step and finaliser on 64-bit unsigned integers and the results
are summed modulo 2^64; the checksum is that sum in decimal. Implementations:

- ``loop`` (py-loop): the plain loop, one thread (the baseline; ``--threads`` must be 1).
- ``threads`` (py-threads): a ``ThreadPoolExecutor`` of P threads over P contiguous chunks.
  Pure-Python bytecode holds the GIL, so this stays at one core's speed.
- ``processes`` (py-processes): a ``multiprocessing`` pool of P processes (the platform's
  default start method: fork on Linux up to CPython 3.13), created once before the iterations
  and timed apart as ``phases_ns.pool_start``; the input lives in
  ``multiprocessing.shared_memory`` so a task ships two integers, never the data.
- ``numpy-threads`` (py-numpy-threads): vectorised uint64 rounds on blocks of 2^16 values,
  spread over a ``ThreadPoolExecutor`` of P threads (NumPy's ufuncs release the GIL).
- ``numba`` (py-numba): ``@njit(parallel=True)`` with ``prange`` and ``numba.set_num_threads(P)``;
  compiled before the iterations, timed apart as ``phases_ns.jit`` (no on-disk cache).

Libraries are imported only by the implementation that uses them, before setup is timed.
"""

from __future__ import annotations

import itertools
import sys
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from _kernel import fail, kernel_parser, run_kernel, time_setup

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

TASK = "parallel"
IMPLS = {
    "loop": "py-loop",
    "threads": "py-threads",
    "processes": "py-processes",
    "numpy-threads": "py-numpy-threads",
    "numba": "py-numba",
}
ITEM_SIZE = 8
ROUNDS = 8
MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
MUL1 = 0xBF58476D1CE4E5B9
MUL2 = 0x94D049BB133111EB
NUMPY_BLOCK = 1 << 16


def sum_mix(data: Sequence[int], start: int, stop: int) -> int:
    """Sum modulo 2^64 of the hash of ``data[start:stop]``: the pure-Python kernel."""
    total = 0
    for i in range(start, stop):
        z = data[i]
        for _ in range(ROUNDS):
            z = (z + GAMMA) & MASK
            z = ((z ^ (z >> 30)) * MUL1) & MASK
            z = ((z ^ (z >> 27)) * MUL2) & MASK
            z ^= z >> 31
        total += z
    return total & MASK


def chunks(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous (start, stop) ranges covering 0..n, lengths differing by at most 1."""
    step, extra = divmod(n, parts)
    bounds = [0]
    for k in range(parts):
        bounds.append(bounds[-1] + step + (1 if k < extra else 0))
    return list(itertools.pairwise(bounds))


def count_values(path: Path) -> int:
    size = path.stat().st_size
    if size % ITEM_SIZE:
        fail(f"{path}: size {size} bytes is not a multiple of {ITEM_SIZE} (int64 values)")
    return size // ITEM_SIZE


def load_array(path: Path) -> array[int]:
    """The file as an ``array.array('q')`` (values are small and non-negative)."""
    n = count_values(path)
    data: array[int] = array("q")
    with path.open("rb") as f:
        data.fromfile(f, n)
    if sys.byteorder != "little":
        data.byteswap()
    return data


# --- multiprocessing: the worker side -------------------------------------------------------

_shared: dict[str, object] = {}


def _attach(name: str) -> None:
    """Pool initializer: map the shared input once per worker process."""
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(name=name)
    _shared["shm"] = shm  # keep the mapping alive for the worker's lifetime
    _shared["data"] = shm.buf.cast("q")


def _sum_range(bounds: tuple[int, int]) -> int:
    data = _shared["data"]
    return sum_mix(data, bounds[0], bounds[1])  # type: ignore[arg-type]


# --- setups -----------------------------------------------------------------------------------


Prepared = tuple[int, int, "Callable[[], int]", dict[str, int], "Callable[[], None]"]


def prepare_loop(path: Path, threads: int) -> Prepared:
    if threads != 1:
        fail(f"--impl loop runs on one thread, got --threads {threads}")
    data, setup_ns = time_setup(lambda: load_array(path))
    return len(data), setup_ns, lambda: sum_mix(data, 0, len(data)), {}, lambda: None


def prepare_threads(path: Path, threads: int) -> Prepared:
    data, setup_ns = time_setup(lambda: load_array(path))
    ranges = chunks(len(data), threads)
    pool = ThreadPoolExecutor(max_workers=threads)

    def kernel() -> int:
        parts = pool.map(lambda r: sum_mix(data, r[0], r[1]), ranges)
        return sum(parts) & MASK

    return len(data), setup_ns, kernel, {}, pool.shutdown


def prepare_processes(path: Path, threads: int) -> Prepared:
    import multiprocessing
    from multiprocessing import shared_memory

    def load() -> tuple[shared_memory.SharedMemory, int]:
        n = count_values(path)
        shm = shared_memory.SharedMemory(create=True, size=max(n * ITEM_SIZE, 1))
        try:
            with path.open("rb") as f:
                got = f.readinto(shm.buf[: n * ITEM_SIZE])
            if got != n * ITEM_SIZE:
                fail(f"{path}: short read ({got} of {n * ITEM_SIZE} bytes)")
        except BaseException:
            shm.close()
            shm.unlink()
            raise
        return shm, n

    if sys.byteorder != "little":
        fail("py-processes maps the little-endian input directly; this host is big-endian")
    (shm, n), setup_ns = time_setup(load)
    start = time.perf_counter_ns()
    pool = multiprocessing.Pool(processes=threads, initializer=_attach, initargs=(shm.name,))
    # Every worker has started and attached the input before the iterations are timed.
    pool.map(_sum_range, [(0, 0)] * threads, chunksize=1)
    pool_ns = time.perf_counter_ns() - start
    ranges = chunks(n, threads)

    def kernel() -> int:
        return sum(pool.map(_sum_range, ranges, chunksize=1)) & MASK

    def close() -> None:
        pool.close()
        pool.join()
        shm.close()
        shm.unlink()

    return n, setup_ns, kernel, {"pool_start": pool_ns}, close


def prepare_numpy_threads(path: Path, threads: int) -> Prepared:
    import numpy as np

    def load() -> np.ndarray:
        count_values(path)
        return np.fromfile(path, dtype="<i8").astype(np.uint64)

    a, setup_ns = time_setup(load)
    gamma, mul1, mul2 = np.uint64(GAMMA), np.uint64(MUL1), np.uint64(MUL2)
    s27, s30, s31 = np.uint64(27), np.uint64(30), np.uint64(31)

    def block_sum(bounds: tuple[int, int]) -> int:
        z = a[bounds[0] : bounds[1]].copy()
        t = np.empty_like(z)
        for _ in range(ROUNDS):
            z += gamma  # uint64 arithmetic wraps modulo 2^64
            np.right_shift(z, s30, out=t)
            z ^= t
            z *= mul1
            np.right_shift(z, s27, out=t)
            z ^= t
            z *= mul2
            np.right_shift(z, s31, out=t)
            z ^= t
        return int(z.sum(dtype=np.uint64))

    blocks = [(i, min(i + NUMPY_BLOCK, len(a))) for i in range(0, len(a), NUMPY_BLOCK)]
    pool = ThreadPoolExecutor(max_workers=threads)

    def kernel() -> int:
        return sum(pool.map(block_sum, blocks)) & MASK

    return len(a), setup_ns, kernel, {}, pool.shutdown


def prepare_numba(path: Path, threads: int) -> Prepared:
    import numba
    import numpy as np

    if threads > numba.config.NUMBA_NUM_THREADS:
        fail(f"--threads {threads} exceeds Numba's {numba.config.NUMBA_NUM_THREADS} threads")
    numba.set_num_threads(threads)

    def load() -> np.ndarray:
        count_values(path)
        return np.fromfile(path, dtype="<i8").astype(np.uint64)

    a, setup_ns = time_setup(load)
    start = time.perf_counter_ns()
    kernel_jit = _numba_kernel(numba, np)
    kernel_jit(a[:2])  # compile for a 1-d uint64 array before the clocks
    jit_ns = time.perf_counter_ns() - start
    return len(a), setup_ns, lambda: int(kernel_jit(a)), {"jit": jit_ns}, lambda: None


def _numba_kernel(numba, np):
    # Every constant is a uint64: mixing uint64 with Python ints (int64) would promote to float.
    gamma, mul1, mul2 = np.uint64(GAMMA), np.uint64(MUL1), np.uint64(MUL2)
    s27, s30, s31 = np.uint64(27), np.uint64(30), np.uint64(31)
    rounds = ROUNDS

    @numba.njit(parallel=True)
    def sum_mix_numba(a):
        total = np.uint64(0)
        for i in numba.prange(a.shape[0]):
            z = a[i]
            for _ in range(rounds):
                z = z + gamma
                z = (z ^ (z >> s30)) * mul1
                z = (z ^ (z >> s27)) * mul2
                z = z ^ (z >> s31)
            total += z
        return total

    return sum_mix_numba


PREPARE = {
    "loop": prepare_loop,
    "threads": prepare_threads,
    "processes": prepare_processes,
    "numpy-threads": prepare_numpy_threads,
    "numba": prepare_numba,
}


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, set up, time the kernel, print the JSON line."""
    parser = kernel_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--impl", required=True, choices=list(IMPLS), help="implementation")
    parser.add_argument("--threads", type=int, required=True, metavar="P", help="workers")
    args = parser.parse_args(argv)
    if args.threads < 1:
        fail(f"--threads must be at least 1, got {args.threads}")
    n, setup_ns, kernel, phases, close = PREPARE[args.impl](args.input, args.threads)
    try:
        run_kernel(
            TASK, IMPLS[args.impl], n, setup_ns, iters=args.iters, kernel=kernel, phases=phases
        )
    finally:
        close()


if __name__ == "__main__":
    main()
