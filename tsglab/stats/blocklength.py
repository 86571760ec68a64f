"""Serial dependence diagnostics for the bootstrap: Politis–White block length and Ljung–Box.

DESIGN.md §3 asks for an automatic block length and for a check of serial correlation that says
which bootstrap was used; :func:`tsglab.stats.bootstrap.choose_bootstrap` combines the two.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from tsglab.errors import DegenerateStatisticWarning, InvalidArgument
from tsglab.stats.quantiles import _as_sample

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BlockLength", "SerialCorrelation", "optimal_block_length", "serial_correlation_check"]

MIN_BLOCK_LENGTH_N = 10


def _frame(record: dict[str, object]) -> pd.DataFrame:
    import pandas as pd  # imported here: `import tsglab` stays cheap

    return pd.DataFrame([record])


@dataclass(frozen=True)
class BlockLength:
    """Estimated optimal mean block lengths (not rounded).

    Attributes
    ----------
    stationary : float
        For the stationary bootstrap (mean of the geometric block lengths).
    circular : float
        For the circular- and moving-block bootstraps.
    n : int
        Sample size.
    method : str
        ``"politis-white"`` (with the Patton–Politis–White 2009 correction).
    """

    stationary: float
    circular: float
    n: int
    method: str = "politis-white"

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        return _frame(asdict(self))


def _validate_block_length_input(x: ArrayLike) -> np.ndarray:
    sample = _as_sample(x)
    if sample.size < MIN_BLOCK_LENGTH_N:
        raise InvalidArgument(
            f"`x` needs at least {MIN_BLOCK_LENGTH_N} observations for a Politis–White block length; "
            f"got {sample.size}. Pass `block_length` explicitly."
        )
    return sample


def optimal_block_length(x: ArrayLike) -> BlockLength:
    r"""Politis–White automatic block length for the stationary and circular bootstraps.

    Parameters
    ----------
    x : array_like
        1-D series in time order, at least 10 finite values.

    Returns
    -------
    BlockLength
        ``stationary`` and ``circular`` mean block lengths (floats; round them, at least 1).

    Raises
    ------
    ValueError
        If ``x`` is not 1-D, holds NaN/infinite values or has fewer than 10 observations.

    Notes
    -----
    With autocovariances :math:`\hat\gamma_k = n^{-1}\sum_{t=k+1}^{n}(x_t-\bar x)(x_{t-k}-\bar x)`,
    the bandwidth :math:`m` is twice the first lag after which :math:`k_n = \max(5, \lfloor
    \log_{10} n\rfloor)` autocorrelations all lie within :math:`\pm 2\sqrt{\log_{10}(n)/n}`
    (at most :math:`\lceil\sqrt n\rceil + k_n`). With the flat-top kernel
    :math:`h(u) = \min(1, 2(1-|u|))`,

    .. math::

        \hat G = \sum_{|k|\le m} h(k/m)\,|k|\,\hat\gamma_k, \qquad
        \hat\sigma^2 = \sum_{|k|\le m} h(k/m)\,\hat\gamma_k, \qquad
        \hat b = \left(\frac{2\hat G^2}{c\,\hat\sigma^4}\, n\right)^{1/3},

    with :math:`c = 2` (stationary) and :math:`c = 4/3` (circular), capped at
    :math:`\lceil\min(3\sqrt n, n/3)\rceil`. This is the algorithm of ``arch.bootstrap.
    optimal_block_length`` (autocorrelations use the full overlapping sums), against which it is
    tested.

    References
    ----------
    .. [1] D. N. Politis and H. White, "Automatic block-length selection for the dependent
       bootstrap", *Econometric Reviews* 23(1), 53–70, 2004.
    .. [2] A. Patton, D. N. Politis and H. White, "Correction to 'Automatic block-length selection
       for the dependent bootstrap'", *Econometric Reviews* 28(4), 372–375, 2009.
    """
    sample = _validate_block_length_input(x)
    n = sample.size
    eps = sample - sample.mean()
    b_max = math.ceil(min(3.0 * math.sqrt(n), n / 3.0))
    kn = max(5, int(np.log10(n)))
    m_max = math.ceil(math.sqrt(n)) + kn
    band = 2.0 * math.sqrt(math.log10(n) / n)
    acv = np.zeros(m_max + 1)
    abs_acorr = np.zeros(m_max + 1)
    opt_m = None
    for i in range(m_max + 1):
        v1 = eps[i + 1 :] @ eps[i + 1 :]
        v2 = eps[: -(i + 1)] @ eps[: -(i + 1)]
        cross = eps[i:] @ eps[: n - i]
        acv[i] = cross / n
        abs_acorr[i] = abs(cross) / math.sqrt(v1 * v2) if v1 * v2 > 0 else 0.0
        if opt_m is None and i >= kn and np.all(abs_acorr[i - kn : i] < band):
            opt_m = i - kn
    m = min(2 * max(opt_m, 1) if opt_m is not None else m_max, m_max)
    lags = np.arange(1, m + 1)
    flat_top = np.where(lags / m <= 0.5, 1.0, 2.0 * (1.0 - lags / m))
    g = float(np.sum(2.0 * flat_top * lags * acv[1 : m + 1]))
    long_run = float(acv[0] + np.sum(2.0 * flat_top * acv[1 : m + 1]))
    if long_run == 0.0:
        warnings.warn(
            "The series is constant (zero long-run variance); the block length is undefined, returning NaN.",
            DegenerateStatisticWarning,
            stacklevel=2,
        )
        return BlockLength(stationary=float("nan"), circular=float("nan"), n=n)
    b_sb = ((2.0 * g**2) / (2.0 * long_run**2)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    b_cb = ((2.0 * g**2) / (4.0 / 3.0 * long_run**2)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return BlockLength(stationary=float(min(b_sb, b_max)), circular=float(min(b_cb, b_max)), n=n)


@dataclass(frozen=True)
class SerialCorrelation:
    """Ljung–Box test of no autocorrelation up to ``lags``.

    Attributes
    ----------
    statistic : float
        :math:`Q = n(n+2)\\sum_{k=1}^{h}\\hat\\rho_k^2/(n-k)` (NaN for a constant series).
    p_value : float
        :math:`P(\\chi^2_h > Q)`.
    significant : bool
        ``p_value < alpha``.
    lags, alpha, n
        Settings and sample size.
    test : str
        ``"ljung-box"``.
    """

    statistic: float
    p_value: float
    significant: bool
    lags: int
    alpha: float
    n: int
    test: str = "ljung-box"

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        return _frame(asdict(self))


def _validate_serial_check(x: ArrayLike, lags: int, alpha: float) -> np.ndarray:
    sample = _as_sample(x)
    if isinstance(lags, bool) or not isinstance(lags, (int, np.integer)) or not 1 <= lags < sample.size:
        raise InvalidArgument(
            f"`lags` must be an integer in [1, {max(sample.size - 1, 1)}] (below the sample size "
            f"{sample.size}); got {lags!r}. The usual choice is min(10, n // 5)."
        )
    if not 0.0 < alpha < 1.0:
        raise InvalidArgument(f"`alpha` must lie strictly between 0 and 1; got {alpha!r}. Use e.g. 0.05.")
    return sample


def serial_correlation_check(x: ArrayLike, *, lags: int = 10, alpha: float = 0.05) -> SerialCorrelation:
    r"""Ljung–Box portmanteau test for autocorrelation of a series in time order.

    Parameters
    ----------
    x : array_like
        1-D series in time (dispatch) order.
    lags : int, keyword-only
        Number of autocorrelations :math:`h` in the statistic, in ``[1, n - 1]``.
    alpha : float, keyword-only
        Level at which ``significant`` is set.

    Returns
    -------
    SerialCorrelation

    Raises
    ------
    ValueError
        If ``lags`` is outside ``[1, n-1]`` or ``alpha`` outside (0, 1).

    Notes
    -----
    .. math::

        \hat\rho_k = \frac{\sum_{t=k+1}^{n}(x_t-\bar x)(x_{t-k}-\bar x)}{\sum_{t=1}^{n}(x_t-\bar x)^2},
        \qquad Q = n(n+2)\sum_{k=1}^{h}\frac{\hat\rho_k^2}{n-k} \sim \chi^2_h \text{ under } H_0.

    Tested against ``statsmodels.stats.diagnostic.acorr_ljungbox``.

    References
    ----------
    .. [1] G. M. Ljung and G. E. P. Box, "On a measure of lack of fit in time series models",
       *Biometrika* 65(2), 297–303, 1978.
    """
    from scipy.stats import chi2  # imported here: `import tsglab` stays cheap

    sample = _validate_serial_check(x, lags, alpha)
    n = sample.size
    lags = int(lags)
    eps = sample - sample.mean()
    denom = float(eps @ eps)
    if denom == 0.0:
        warnings.warn(
            "The series is constant; autocorrelations are undefined, returning NaN (not significant).",
            DegenerateStatisticWarning,
            stacklevel=2,
        )
        return SerialCorrelation(float("nan"), float("nan"), False, lags, float(alpha), n)
    rho = np.array([eps[k:] @ eps[: n - k] for k in range(1, lags + 1)]) / denom
    statistic = float(n * (n + 2) * np.sum(rho**2 / (n - np.arange(1, lags + 1))))
    p_value = float(chi2.sf(statistic, lags))
    return SerialCorrelation(statistic, p_value, bool(p_value < alpha), lags, float(alpha), n)
