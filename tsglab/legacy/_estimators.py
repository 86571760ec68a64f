"""The estimators of the TSG paper's released bench script, reproduced exactly — and why each is wrong.

These exist only to check that an imported legacy summary is what its events imply (to 1e-6 ms),
and to put tsglab's corrected estimators beside them. Never use them for new results.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binom

from tsglab.errors import InvalidArgument

#: The legacy back-fill added at most this many values per observation.
LEGACY_FILL_CAP = 120


def _sample(x: ArrayLike) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidArgument(f"legacy estimators take a 1-D sample; got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        raise InvalidArgument("legacy estimators take finite values; the legacy events hold a NaN or infinite e2e_ms.")
    return arr


def legacy_binomial_hd(x: ArrayLike, q: float) -> float:
    r"""The legacy "Harrell–Davis" quantile: binomial (Bernstein) weights on the sorted sample.

    Notes
    -----
    .. math:: \hat\theta_q = \sum_{i=1}^{n} \binom{n-1}{i-1} q^{i-1} (1-q)^{n-i}\, x_{(i)}

    Why it is wrong: Harrell–Davis weights are Beta increments
    :math:`W_i = I_{i/n}(q(n+1), (1-q)(n+1)) - I_{(i-1)/n}(\cdot)`; the binomial weights above are a
    Bernstein-polynomial smoother, a different estimator with different values (its weights peak at
    :math:`i-1 \approx q(n-1)` and are narrower), so the paper's "HD" P50/P95 are not HD
    (DESIGN.md §5). Empty sample: NaN.
    """
    sample = np.sort(_sample(x))
    n = sample.size
    if n == 0:
        return math.nan
    weights = binom.pmf(np.arange(n), n - 1, q)
    return float(weights @ sample)


def legacy_co_fill(x: ArrayLike, period_ms: float) -> np.ndarray:
    r"""The legacy coordinated-omission fill: originals followed by :math:`L - jP` while positive.

    Notes
    -----
    For each observation :math:`L` it adds :math:`L - jP` for
    :math:`j = 1, \dots, \min(\lfloor L/P \rfloor, 120)` while the value is > 0.

    Why it is wrong: the values in :math:`(0, P)` (every :math:`L > P` contributes one) are no
    evidence of a stall — they sit below the normal traffic and *lower* the P95 the fill was meant to
    raise; HdrHistogram stops at :math:`L - jP \ge P` (:func:`tsglab.stats.backfill_co`). The cap of
    120 values also truncates long stalls (DESIGN.md §5).
    """
    sample = _sample(x)
    period = float(period_ms)
    if not (math.isfinite(period) and period > 0):
        raise InvalidArgument(f"`period_ms` must be a finite number > 0; got {period_ms!r}.")
    added: list[float] = []
    for latency in sample:
        for j in range(1, min(math.floor(latency / period), LEGACY_FILL_CAP) + 1):
            value = latency - j * period
            if value <= 0:
                break
            added.append(value)
    return np.concatenate([sample, np.asarray(added, dtype=np.float64)])


def legacy_km_quantile(time: ArrayLike, censored: ArrayLike, q: float) -> float:
    r"""The legacy Kaplan–Meier quantile: first sorted time with :math:`1 - S(t) \ge q`.

    Notes
    -----
    Observations are sorted by time (stable: ties keep file order) and walked one at a time; an
    uncensored one multiplies :math:`S` by :math:`1 - 1/r` (:math:`r` = number still at risk), every
    one then leaves the risk set; the first time with :math:`1 - S \ge q` (exact float compare) is
    returned. When the curve never gets there the largest time is returned.

    Why it is wrong: (1) a censored observation tied with an event but earlier in the file leaves the
    risk set before that event, so :math:`S` drops too far; (2) the exact compare misses
    :math:`1 - S = q` by float rounding (tsglab compares with a 1e-12 tolerance) and returns a later
    time; (3) when censoring keeps the curve above :math:`1-q` the quantile is not identified, yet it
    reports the largest time instead of NaN and a flag — and it ignores tsglab's 5 % censoring limit.
    """
    times = _sample(time)
    flags = np.asarray(censored, dtype=bool)
    if flags.shape != times.shape:
        raise InvalidArgument(f"`time` and `censored` differ in length: {times.size} and {flags.size}.")
    if times.size == 0:
        return math.nan
    order = np.argsort(times, kind="stable")
    at_risk = times.size
    survival = 1.0
    for i in order:
        if not flags[i]:
            survival *= 1.0 - 1.0 / at_risk
        at_risk -= 1
        if 1.0 - survival >= q:
            return float(times[i])
    return float(times[order[-1]])
