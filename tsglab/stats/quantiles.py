"""Offline quantile estimators: Harrell–Davis and the type-7 sample quantile.

Both are pure functions of a float64 sample, so a later numba kernel can replace the inner loop
without changing the public wrapper. The validation helpers here are shared with
:mod:`tsglab.stats.censoring`.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betainc

from tsglab.errors import DegenerateStatisticWarning

__all__ = ["harrell_davis", "sample_quantile"]


def _as_sample(x: ArrayLike, *, name: str = "x") -> np.ndarray:
    """Return ``x`` as a 1-D float64 array, rejecting NaN and infinite values."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must be a 1-D array of numbers; got {type(x).__name__}.") from exc
    if arr.ndim != 1:
        raise ValueError(
            f"`{name}` must be 1-D; got an array of shape {arr.shape}. Use `np.ravel({name})` if that "
            "is what you mean."
        )
    n_nan = int(np.isnan(arr).sum())
    if n_nan:
        raise ValueError(
            f"`{name}` contains {n_nan} NaN value(s) out of {arr.size}. Drop them first "
            f"(`{name}[~np.isnan({name})]`) or, for timeouts, use `tsglab.stats.km_quantile`."
        )
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        raise ValueError(
            f"`{name}` contains {n_inf} infinite value(s) out of {arr.size}. Treat them as "
            "right-censored observations (`km_quantile`, `slo_cap_quantile`) instead."
        )
    return arr


def _as_probabilities(q: ArrayLike) -> np.ndarray:
    """Return ``q`` as a float64 array (any shape) of probabilities in the open interval (0, 1)."""
    try:
        q_arr = np.asarray(q, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`q` must be a number or an array of numbers in (0, 1); got {q!r}.") from exc
    bad = ~((q_arr > 0.0) & (q_arr < 1.0))  # also catches NaN
    if bad.any():
        first = q_arr.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]]
        raise ValueError(
            f"`q` must lie strictly between 0 and 1; got {float(first)!r}. Use e.g. q=0.95 for the P95 "
            "(min and max are `np.min(x)`, `np.max(x)`)."
        )
    return q_arr


def _empty_result(q_arr: np.ndarray, *, what: str) -> float | np.ndarray:
    warnings.warn(
        f"{what} of an empty sample is undefined; returning NaN.",
        DegenerateStatisticWarning,
        stacklevel=3,
    )
    if q_arr.ndim == 0:
        return float("nan")
    return np.full(q_arr.shape, np.nan)


def _harrell_davis_sorted(sorted_x: np.ndarray, q_flat: np.ndarray) -> np.ndarray:
    """Harrell–Davis estimates for a sorted, non-empty sample and a 1-D array of probabilities."""
    n = sorted_x.size
    a = q_flat * (n + 1)
    b = (1.0 - q_flat) * (n + 1)
    grid = np.arange(n + 1, dtype=np.float64) / n
    # I_{i/n}(a, b) for i = 0..n: the Beta(a, b) CDF at the grid; rows are probabilities.
    cdf = betainc(a[:, None], b[:, None], grid[None, :])
    weights = np.diff(cdf, axis=1)
    return weights @ sorted_x


def harrell_davis(x: ArrayLike, q: ArrayLike) -> float | np.ndarray:
    r"""Harrell–Davis quantile estimate.

    Parameters
    ----------
    x : array_like
        1-D sample (float64 after conversion). NaN or infinite values raise ``ValueError``.
    q : float or array_like
        Probability or probabilities, each strictly between 0 and 1.

    Returns
    -------
    float or numpy.ndarray
        A float when ``q`` is a scalar, otherwise an array of the shape of ``q``. An empty sample
        gives NaN and a :class:`~tsglab.errors.DegenerateStatisticWarning`; a sample of one value
        gives that value.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D or holds NaN/infinite values, or ``q`` is outside (0, 1).

    Notes
    -----
    With order statistics :math:`x_{(1)} \le \dots \le x_{(n)}`,

    .. math::

        \hat\theta_q = \sum_{i=1}^{n} W_i\, x_{(i)}, \qquad
        W_i = I_{i/n}(a, b) - I_{(i-1)/n}(a, b), \qquad a = q(n+1),\; b = (1-q)(n+1),

    where :math:`I_x(a, b)` is the regularized incomplete beta function (``scipy.special.betainc``).
    The weights are positive and sum to one, so the estimate lies in :math:`[x_{(1)}, x_{(n)}]` and
    is non-decreasing in :math:`q`.

    This is *not* the "binomial weights" estimator
    :math:`W_i = \binom{n-1}{i-1} q^{i-1}(1-q)^{n-i}` found in some code bases (DESIGN.md §5): that
    one is a different (Bernstein-polynomial) smoother and gives different values.

    On multimodal data the estimate can fall between modes, where no observation lies; show the
    ECDF beside it.

    References
    ----------
    .. [1] F. E. Harrell and C. E. Davis, "A new distribution-free quantile estimator",
       *Biometrika* 69(3), 635–640, 1982.
    .. [2] ``scipy.stats.mstats.hdquantiles`` (same estimator, used as a reference in the tests).

    Examples
    --------
    >>> harrell_davis([1.0, 2.0, 3.0], 0.5)
    2.0
    """
    sample = _as_sample(x)
    q_arr = _as_probabilities(q)
    if sample.size == 0:
        return _empty_result(q_arr, what="The Harrell–Davis quantile")
    if sample.size == 1:
        value = float(sample[0])
        return value if q_arr.ndim == 0 else np.full(q_arr.shape, value)
    estimates = _harrell_davis_sorted(np.sort(sample), q_arr.reshape(-1))
    if q_arr.ndim == 0:
        return float(estimates[0])
    return estimates.reshape(q_arr.shape)


def sample_quantile(x: ArrayLike, q: ArrayLike) -> float | np.ndarray:
    r"""Type-7 sample quantile (linear interpolation between order statistics).

    Parameters
    ----------
    x : array_like
        1-D sample (float64 after conversion). NaN or infinite values raise ``ValueError``.
    q : float or array_like
        Probability or probabilities, each strictly between 0 and 1.

    Returns
    -------
    float or numpy.ndarray
        A float when ``q`` is a scalar, otherwise an array of the shape of ``q``. An empty sample
        gives NaN and a :class:`~tsglab.errors.DegenerateStatisticWarning`.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D or holds NaN/infinite values, or ``q`` is outside (0, 1).

    Notes
    -----
    With :math:`h = (n-1)q` and :math:`j = \lfloor h \rfloor` (0-based order statistics),

    .. math::

        \hat\theta_q = x_{(j)} + (h - j)\,(x_{(j+1)} - x_{(j)}),

    Hyndman & Fan's definition 7, the default of R's ``quantile`` and of ``numpy.quantile``
    (``method="linear"``), which computes it here.

    References
    ----------
    .. [1] R. J. Hyndman and Y. Fan, "Sample quantiles in statistical packages",
       *The American Statistician* 50(4), 361–365, 1996.

    Examples
    --------
    >>> sample_quantile([1.0, 2.0, 3.0, 4.0], 0.5)
    2.5
    """
    sample = _as_sample(x)
    q_arr = _as_probabilities(q)
    if sample.size == 0:
        return _empty_result(q_arr, what="The sample quantile")
    estimates = np.quantile(sample, q_arr, method="linear")
    if q_arr.ndim == 0:
        return float(estimates)
    return np.asarray(estimates, dtype=np.float64)
