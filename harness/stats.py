"""Pure statistics over plain numbers: descriptive summaries, outlier scores, bootstrap
confidence intervals (hierarchical: sessions, then runs) and the verdict on a ratio's CI.

No pandas, no file I/O, no clock, no global random state: every bootstrap draws from a
`numpy.random.Generator` the caller seeds, so a result does not depend on which other
quantities were computed alongside it. `harness/frames.py` builds the bundle's tables on top.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import numpy.typing as npt

N_BOOT = 2000
CONFIDENCE = 0.95
# Multiplying the raw MAD by this makes it a consistent estimator of the standard deviation for
# normally distributed data. Iglewicz and Hoaglin's 0.6745 is its inverse.
MAD_TO_SD = 1.4826
IGLEWICZ_HOAGLIN = 0.6745
# When the MAD is 0 (more than half the values are equal) the modified z-score is undefined;
# the mean absolute deviation scaled by sqrt(pi/2) takes its place.
MEANAD_TO_SD = 1.253314
# Upper bound on the floats one bootstrap chunk holds (32 MiB of float64).
_CHUNK_FLOATS = 1 << 22

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
# sessions -> runs -> values of one run (one wall time, or the measured iterations)
Sessions = Sequence[Sequence[Sequence[float] | FloatArray]]

FASTER = "faster"
SLOWER = "slower"
NO_DIFFERENCE = "no difference"


# --- descriptive statistics ---------------------------------------------------------------


def array(x: Iterable[float] | FloatArray) -> FloatArray:
    return np.asarray(list(x) if not isinstance(x, np.ndarray) else x, dtype=np.float64).ravel()


def median(x: Iterable[float] | FloatArray) -> float:
    """The median; NaN for no data."""
    a = array(x)
    return float(np.median(a)) if a.size else math.nan


def mad(x: Iterable[float] | FloatArray, *, scaled: bool = False) -> float:
    """Median absolute deviation from the median.

    Unscaled by default (the `*_mad_ns` columns are unscaled); `scaled=True` multiplies by
    1.4826 so that it estimates the standard deviation of normal data.
    """
    a = array(x)
    if not a.size:
        return math.nan
    raw = float(np.median(np.abs(a - np.median(a))))
    return raw * MAD_TO_SD if scaled else raw


def sd(x: Iterable[float] | FloatArray) -> float:
    """Sample standard deviation (n - 1 in the denominator); NaN below 2 values."""
    a = array(x)
    return float(np.std(a, ddof=1)) if a.size >= 2 else math.nan


def cv(x: Iterable[float] | FloatArray) -> float:
    """Coefficient of variation: sample SD over mean; NaN below 2 values or for a zero mean."""
    a = array(x)
    if a.size < 2:
        return math.nan
    m = float(np.mean(a))
    return sd(a) / m if m != 0 else math.nan


def modified_z(x: Iterable[float] | FloatArray) -> FloatArray:
    """Iglewicz-Hoaglin modified z-score: 0.6745 (x - median) / MAD.

    With a zero MAD the mean absolute deviation stands in (scaled by 1.253314); when that is
    zero too, every value equals the median and every score is 0.
    """
    a = array(x)
    if not a.size:
        return a
    dev = a - np.median(a)
    m = float(np.median(np.abs(dev)))
    if m > 0:
        return IGLEWICZ_HOAGLIN * dev / m
    mean_ad = float(np.mean(np.abs(dev)))
    if mean_ad > 0:
        return dev / (MEANAD_TO_SD * mean_ad)
    return np.zeros_like(a)


def outlier_flags(x: Iterable[float] | FloatArray, threshold: float = 3.5) -> BoolArray:
    """True where |modified z-score| > threshold. Flags only: callers never drop flagged data."""
    return np.asarray(np.abs(modified_z(x)) > threshold, dtype=np.bool_)


def geomean(x: Iterable[float] | FloatArray) -> float:
    """Geometric mean of positive values; NaN for no data or a non-positive value."""
    a = array(x)
    if not a.size or np.any(a <= 0):
        return math.nan
    return float(np.exp(np.mean(np.log(a))))


# --- bootstrap --------------------------------------------------------------------------------


def rng_for(seed: int | np.random.SeedSequence) -> np.random.Generator:
    return np.random.default_rng(seed)


def seed_for(seed: int, *parts: object) -> np.random.SeedSequence:
    """A seed for one named quantity, independent of the order in which quantities are computed."""
    name = "\x1f".join(str(p) for p in parts)
    return np.random.SeedSequence([seed, zlib.crc32(name.encode())])


def _chunks(n_boot: int, width: int) -> Iterator[tuple[int, int]]:
    step = max(1, _CHUNK_FLOATS // max(1, width))
    for start in range(0, n_boot, step):
        yield start, min(n_boot, start + step)


# Student's t, 97.5 % quantile, for 1 to 30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def expanded_alpha(clusters: int | None) -> float:
    """The tail probability of a 95 % percentile interval, widened for few clusters.

    A percentile bootstrap over k sessions is too narrow when k is small: it never sees more
    between-session spread than the k sessions show. Hesterberg's expanded percentile interval
    ("What teachers should know about the bootstrap", 2015) fixes that: use the quantiles at
    alpha'/2 and 1 - alpha'/2, where Phi^-1(alpha'/2) = -sqrt(k / (k - 1)) * t(0.975, k - 1).
    With 2 sessions the interval spans the whole bootstrap distribution; with 4, alpha' is
    0.00024; it grows back towards 0.05 with more sessions (0.038 at 31, 0.046 at 100).
    """
    alpha = 1 - CONFIDENCE
    if clusters is None or clusters < 2:
        return alpha
    df = clusters - 1
    t = _T975[df - 1] if df <= len(_T975) else 1.96 + 2.37 / df
    return math.erfc(math.sqrt(clusters / df) * t / math.sqrt(2))


def percentiles(values: FloatArray, clusters: int | None = None) -> tuple[float, float]:
    """The percentile interval of a bootstrap distribution; expanded for few `clusters`."""
    alpha = expanded_alpha(clusters)
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _row_nanmedian(a: FloatArray) -> FloatArray:
    """Median of each row ignoring NaN padding (np.nanmedian loops in Python per row)."""
    s = np.sort(a, axis=1)  # NaN sorts last
    n = np.sum(~np.isnan(a), axis=1)
    rows = np.arange(a.shape[0])
    return np.asarray((s[rows, (n - 1) // 2] + s[rows, n // 2]) / 2, dtype=np.float64)


def _pack(sessions: Sessions) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Sessions as a NaN-padded (session, run, value) array and the run count of each session."""
    packed = [[np.asarray(r, dtype=np.float64) for r in s] for s in sessions]
    packed = [[r for r in s if r.size] for s in packed]
    packed = [s for s in packed if s]
    if not packed:
        raise ValueError("no data to bootstrap: every session is empty")
    n_runs = max(len(s) for s in packed)
    n_vals = max(r.size for s in packed for r in s)
    out = np.full((len(packed), n_runs, n_vals), np.nan)
    for i, s in enumerate(packed):
        for j, r in enumerate(s):
            out[i, j, : r.size] = r
    return out, np.array([len(s) for s in packed], dtype=np.intp)


def clusters(sessions: Sessions) -> int:
    """How many sessions hold data: the top-level sample size of a hierarchical bootstrap."""
    return sum(1 for s in sessions if any(np.asarray(r).size for r in s))


def pooled(sessions: Sessions) -> FloatArray:
    parts = [np.asarray(r, dtype=np.float64) for s in sessions for r in s]
    return np.concatenate(parts) if parts else np.empty(0)


def hierarchical_medians(
    sessions: Sessions, *, n_boot: int, rng: np.random.Generator
) -> FloatArray:
    """Bootstrap distribution of the pooled median: draw sessions with replacement, then runs
    with replacement within each drawn session. The values of a drawn run (its iterations) stay
    together: they share one process, so they are not independent draws.
    """
    values, run_counts = _pack(sessions)
    n_sess, n_runs, n_vals = values.shape
    out = np.empty(n_boot)
    for start, stop in _chunks(n_boot, n_sess * n_runs * n_vals):
        b = stop - start
        sess = rng.integers(0, n_sess, size=(b, n_sess))
        counts = run_counts[sess]  # (b, n_sess)
        runs = (rng.random((b, n_sess, n_runs)) * counts[..., None]).astype(np.intp)
        drawn = values[sess[..., None], runs]  # (b, n_sess, n_runs, n_vals)
        # A session with fewer runs than the widest one draws only as many runs as it has.
        used = np.arange(n_runs) < counts[..., None]
        drawn = np.where(used[..., None], drawn, np.nan)
        out[start:stop] = _row_nanmedian(drawn.reshape(b, -1))
    return out


def hierarchical_median_ci(
    sessions: Sessions, *, n_boot: int = N_BOOT, seed: int | np.random.SeedSequence = 0
) -> tuple[float, float, float]:
    """Pooled median and its 95 % CI by hierarchical bootstrap (sessions, then runs)."""
    values = pooled(sessions)
    if not values.size:
        return math.nan, math.nan, math.nan
    meds = hierarchical_medians(sessions, n_boot=n_boot, rng=rng_for(seed))
    lo, hi = percentiles(meds, clusters(sessions))
    return float(np.median(values)), lo, hi


def hierarchical_ratio_ci(
    numerator: Sessions,
    denominator: Sessions,
    *,
    n_boot: int = N_BOOT,
    seed: int | np.random.SeedSequence = 0,
) -> tuple[float, float, float]:
    """median(numerator) / median(denominator) and its 95 % CI.

    Each side is resampled on its own (hierarchical bootstrap, independent streams); the CI is
    the percentile interval of the ratio of the resampled medians.
    """
    num, den = pooled(numerator), pooled(denominator)
    if not num.size or not den.size:
        return math.nan, math.nan, math.nan
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    seq_num, seq_den = seq.spawn(2)
    boot = hierarchical_medians(numerator, n_boot=n_boot, rng=rng_for(seq_num)) / (
        hierarchical_medians(denominator, n_boot=n_boot, rng=rng_for(seq_den))
    )
    lo, hi = percentiles(boot, min(clusters(numerator), clusters(denominator)))
    return float(np.median(num) / np.median(den)), lo, hi


def verdict(ci_low: float, ci_high: float, noise: float = 0.01) -> str:
    """Verdict on a speed-up CI: "faster" or "slower" when it is clear of [1 - noise, 1 + noise],
    else "no difference" (a CI touching that band cannot tell the two apart).
    """
    if ci_low > 1 + noise:
        return FASTER
    if ci_high < 1 - noise:
        return SLOWER
    return NO_DIFFERENCE
