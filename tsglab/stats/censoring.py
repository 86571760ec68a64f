"""Quantiles of right-censored latencies (timeouts): Kaplan–Meier and SLO-cap.

A request that hits its timeout has an unknown latency larger than the elapsed time: a
right-censored observation. Dropping it biases tail quantiles down; DESIGN.md §3 asks for two
answers side by side — the Kaplan–Meier quantile (NaN and a flag when the curve cannot reach the
quantile) and the SLO-cap quantile (censored values set to the cap, a conservative upper-side view).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike

from tsglab.errors import DegenerateStatisticWarning, InvalidArgument
from tsglab.stats._config import KM_TOLERANCE  # re-exported; see _config for why it exists
from tsglab.stats.quantiles import _as_probabilities, _as_sample, harrell_davis, sample_quantile

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "KM_TOLERANCE",
    "CensoringSummary",
    "KMQuantile",
    "KaplanMeierCurve",
    "SLOCapQuantile",
    "censoring_summary",
    "kaplan_meier",
    "km_quantile",
    "slo_cap_quantile",
]

CensoringMode = Literal["none", "km", "slo_cap"]


def _frame(record: dict[str, object]) -> pd.DataFrame:
    import pandas as pd  # imported here: `import tsglab` stays cheap

    return pd.DataFrame([record])


def _validate_censored_sample(time: ArrayLike, censored: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (time, censored) pair: 1-D, same length, finite non-negative times, boolean flags."""
    times = _as_sample(time, name="time")
    flags_raw = np.asarray(censored)
    if flags_raw.ndim != 1:
        raise InvalidArgument(
            f"`censored` must be 1-D; got an array of shape {flags_raw.shape}. Pass one flag per observation."
        )
    if flags_raw.shape != times.shape:
        raise InvalidArgument(
            f"`time` and `censored` must have the same length; got {times.size} and {flags_raw.size}. "
            "Pass one censoring flag per observation."
        )
    if flags_raw.dtype == np.bool_:
        flags = flags_raw
    else:
        try:
            numeric = flags_raw.astype(np.float64)
        except (TypeError, ValueError):
            numeric = None
        if numeric is None or not np.isin(numeric, (0.0, 1.0)).all():
            raise InvalidArgument(
                "`censored` must hold booleans (True = right-censored, e.g. a timeout) or 0/1; got "
                f"dtype {flags_raw.dtype} with other values. Use e.g. `events['timeout'].astype(bool)`."
            )
        flags = numeric.astype(np.bool_)
    negative = np.flatnonzero(times < 0)
    if negative.size:
        i = int(negative[0])
        raise InvalidArgument(
            f"`time` must be non-negative durations; got {float(times[i])!r} at index {i} "
            f"({negative.size} negative value(s)). Check the clock stamps the durations came from."
        )
    return times, flags


def _validate_cap(cap_ms: float) -> float:
    try:
        cap = float(cap_ms)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"`cap_ms` must be a positive number of milliseconds; got {cap_ms!r}. Use the request timeout (the "
            "SLO), e.g. cap_ms=30_000."
        ) from exc
    if not (np.isfinite(cap) and cap > 0):
        raise InvalidArgument(
            f"`cap_ms` must be a finite positive number of milliseconds; got {cap_ms!r}. Use the "
            "request timeout (the SLO), e.g. cap_ms=30_000."
        )
    return cap


def _validate_scalar_q(q: float) -> float:
    q_arr = _as_probabilities(q)
    if q_arr.ndim != 0:
        raise InvalidArgument(
            f"`q` must be a single probability here; got an array of shape {q_arr.shape}. Call once per q."
        )
    return float(q_arr)


# --------------------------------------------------------------------------------------------------
# Kaplan–Meier


@dataclass(frozen=True, eq=False)
class KaplanMeierCurve:
    """Kaplan–Meier survival curve, one row per distinct event time.

    Attributes
    ----------
    time : numpy.ndarray
        Distinct event (uncensored) times, increasing.
    survival : numpy.ndarray
        :math:`\\hat S(t)` just after each event time (right-continuous step function).
    at_risk : numpy.ndarray
        Number at risk just before each event time (censorings at that time still count).
    events : numpy.ndarray
        Number of events at each event time.
    n : int
        Sample size.
    n_censored : int
        Number of right-censored observations.
    """

    time: np.ndarray
    survival: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    n: int
    n_censored: int

    def to_frame(self) -> pd.DataFrame:
        """The curve as a DataFrame, one row per event time, one column per field (``n`` and
        ``n_censored`` repeated on every row): ``time, at_risk, events, survival, n, n_censored``."""
        import pandas as pd

        return pd.DataFrame(
            {"time": self.time, "at_risk": self.at_risk, "events": self.events, "survival": self.survival,
             "n": self.n, "n_censored": self.n_censored}
        )


def _kaplan_meier_arrays(times: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, ...]:
    """Product-limit estimate on validated arrays: (event_times, survival, at_risk, events)."""
    sorted_all = np.sort(times)
    event_times, events = np.unique(times[~flags], return_counts=True)
    # Events before censorings at a tied time: an observation censored at t is still at risk at t.
    at_risk = times.size - np.searchsorted(sorted_all, event_times, side="left")
    survival = np.cumprod(1.0 - events / at_risk)
    return event_times, survival, at_risk.astype(np.int64), events.astype(np.int64)


def kaplan_meier(time: ArrayLike, censored: ArrayLike) -> KaplanMeierCurve:
    r"""Kaplan–Meier (product-limit) survival curve of right-censored durations.

    Parameters
    ----------
    time : array_like
        1-D non-negative durations (e.g. latency in ms). For a censored observation, the elapsed time
        when it was cut off.
    censored : array_like of bool
        ``True`` where the observation is right-censored (a lower bound, e.g. a timeout).

    Returns
    -------
    KaplanMeierCurve

    Notes
    -----
    With distinct event times :math:`t_1 < \dots < t_k`, :math:`d_j` events at :math:`t_j` and
    :math:`n_j = \#\{i : T_i \ge t_j\}` at risk,

    .. math:: \hat S(t) = \prod_{j:\, t_j \le t} \left(1 - \frac{d_j}{n_j}\right).

    Ties follow the standard convention: events come before censorings at the same time.

    References
    ----------
    .. [1] E. L. Kaplan and P. Meier, "Nonparametric estimation from incomplete observations",
       *JASA* 53(282), 457–481, 1958.
    """
    times, flags = _validate_censored_sample(time, censored)
    event_times, survival, at_risk, events = _kaplan_meier_arrays(times, flags)
    return KaplanMeierCurve(
        time=event_times,
        survival=survival,
        at_risk=at_risk,
        events=events,
        n=int(times.size),
        n_censored=int(flags.sum()),
    )


@dataclass(frozen=True)
class KMQuantile:
    """Kaplan–Meier quantile of right-censored durations.

    Attributes
    ----------
    estimate : float
        Smallest event time with :math:`1 - \\hat S(t) \\ge q`; NaN when the curve never gets there.
    reached : bool
        Whether the curve reached ``q``.
    censored_fraction : float
        Share of observations that are right-censored (NaN for an empty sample).
    n : int
        Sample size.
    n_events : int
        Number of uncensored observations.
    q : float
        The probability asked for.
    method : str
        ``"kaplan-meier"``.
    """

    estimate: float
    reached: bool
    censored_fraction: float
    n: int
    n_events: int
    q: float
    method: str = "kaplan-meier"

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        return _frame(asdict(self))


def km_quantile(time: ArrayLike, censored: ArrayLike, q: float = 0.95) -> KMQuantile:
    r"""Kaplan–Meier quantile of right-censored durations.

    Parameters
    ----------
    time : array_like
        1-D non-negative durations; for a censored observation, the elapsed time at cut-off.
    censored : array_like of bool
        ``True`` where the observation is right-censored (a lower bound, e.g. a timeout).
    q : float, default 0.95
        Probability, strictly between 0 and 1.

    Returns
    -------
    KMQuantile
        ``estimate`` is NaN, ``reached`` is False and a
        :class:`~tsglab.errors.DegenerateStatisticWarning` is emitted when the curve never reaches
        ``q`` (too much censoring in the tail) or the sample is empty.

    Raises
    ------
    ValueError
        On NaN/infinite/negative times, lengths that differ, non-boolean flags, or ``q`` outside (0, 1).

    Notes
    -----
    .. math:: \hat t_q = \min\{\, t_j : 1 - \hat S(t_j) \ge q - \varepsilon \,\}, \qquad
              \varepsilon = 10^{-12}

    (:data:`KM_TOLERANCE`), with :math:`\hat S` the product-limit estimate (see
    :func:`kaplan_meier`). This is lifelines' ``KaplanMeierFitter.percentile(1 - q)`` (first time
    the survival drops to :math:`\le 1 - q`), except that lifelines returns ``inf`` where this
    returns NaN and compares without a tolerance. Without censoring it is the type-1 (inverse-ECDF)
    sample quantile.

    If more than :math:`1 - q` of the sample is censored beyond the last event, :math:`\hat S` stays
    above :math:`1 - q` and the quantile is not identified: report the SLO-cap quantile instead
    (:func:`slo_cap_quantile`, :func:`censoring_summary`).

    References
    ----------
    .. [1] E. L. Kaplan and P. Meier, "Nonparametric estimation from incomplete observations",
       *JASA* 53(282), 457–481, 1958.
    .. [2] R. Brookmeyer and J. Crowley, "A confidence interval for the median survival time",
       *Biometrics* 38(1), 29–41, 1982 (quantile definition).
    """
    times, flags = _validate_censored_sample(time, censored)
    q_value = _validate_scalar_q(q)
    n = int(times.size)
    n_censored = int(flags.sum())
    censored_fraction = n_censored / n if n else float("nan")
    event_times, survival, _, _ = _kaplan_meier_arrays(times, flags)
    hits = np.flatnonzero(1.0 - survival >= q_value - KM_TOLERANCE)
    reached = bool(hits.size)
    if reached:
        estimate = float(event_times[hits[0]])
    else:
        estimate = float("nan")
        lowest = float(survival[-1]) if survival.size else 1.0
        warnings.warn(
            f"The Kaplan–Meier curve never reaches q={q_value} (n={n}, {n_censored} censored, lowest "
            f"1 - S(t) = {1.0 - lowest:.4g}); returning NaN. Use `slo_cap_quantile` for a capped "
            "estimate.",
            DegenerateStatisticWarning,
            stacklevel=2,
        )
    return KMQuantile(
        estimate=estimate,
        reached=reached,
        censored_fraction=censored_fraction,
        n=n,
        n_events=n - n_censored,
        q=q_value,
    )


# --------------------------------------------------------------------------------------------------
# SLO cap


@dataclass(frozen=True)
class SLOCapQuantile:
    """Quantile after raising censored values to the cap (uncensored values are kept as observed).

    Attributes
    ----------
    estimate : float
        The quantile of the capped sample (NaN for an empty sample).
    cap_ms : float
        The cap (usually the request timeout / SLO).
    n : int
        Sample size.
    n_censored : int
        Number of right-censored observations (raised to the cap).
    n_capped : int
        Number of uncensored observations above the cap (kept: in a CO view queueing delay makes
        completed requests exceed the timeout, and clipping them would lower the quantile).
    q : float
        The probability asked for.
    estimator : str
        ``"harrell-davis"`` or ``"sample"`` (type 7).
    """

    estimate: float
    cap_ms: float
    n: int
    n_censored: int
    n_capped: int
    q: float
    estimator: str

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        return _frame(asdict(self))


_ESTIMATORS = {"harrell-davis": harrell_davis, "sample": sample_quantile}


def _slo_cap(
    times: np.ndarray, flags: np.ndarray, q_value: float, cap: float, estimator: str
) -> SLOCapQuantile:
    capped = np.where(flags, np.maximum(times, cap), times)
    estimate = _ESTIMATORS[estimator](capped, q_value)
    return SLOCapQuantile(
        estimate=float(estimate),
        cap_ms=cap,
        n=int(times.size),
        n_censored=int(flags.sum()),
        n_capped=int(((times > cap) & ~flags).sum()),
        q=q_value,
        estimator=estimator,
    )


def slo_cap_quantile(
    time: ArrayLike,
    censored: ArrayLike,
    q: float = 0.95,
    *,
    cap_ms: float,
    estimator: Literal["harrell-davis", "sample"] = "harrell-davis",
) -> SLOCapQuantile:
    r"""SLO-cap quantile: censored observations count as the cap.

    Parameters
    ----------
    time : array_like
        1-D non-negative durations in ms; for a censored observation, the elapsed time at cut-off.
    censored : array_like of bool
        ``True`` where the observation is right-censored (e.g. a timeout).
    q : float, default 0.95
        Probability, strictly between 0 and 1.
    cap_ms : float
        The cap in ms, usually the request timeout (SLO). Keyword-only, required.
    estimator : {"harrell-davis", "sample"}, default "harrell-davis"
        :func:`~tsglab.stats.harrell_davis` or the type-7 :func:`~tsglab.stats.sample_quantile`.

    Returns
    -------
    SLOCapQuantile
        An empty sample gives NaN and a :class:`~tsglab.errors.DegenerateStatisticWarning`.

    Notes
    -----
    .. math:: y_i = \begin{cases} \max(t_i, c) & \text{if observation } i \text{ is censored}\\
              t_i & \text{otherwise}\end{cases}, \qquad \hat t_q = Q_q(y_1, \dots, y_n)

    where :math:`c` is ``cap_ms`` and :math:`Q_q` the chosen estimator. Every censored latency is
    at least its elapsed time, and a timeout at the SLO is at least the cap, so the estimate is
    never below the quantile of the times taken at face value. It is a well-defined stand-in when
    the Kaplan–Meier quantile is not identified.

    References
    ----------
    .. [1] DESIGN.md §3 (censoring protocol).
    """
    times, flags = _validate_censored_sample(time, censored)
    q_value = _validate_scalar_q(q)
    cap = _validate_cap(cap_ms)
    if estimator not in _ESTIMATORS:
        raise InvalidArgument(
            f"`estimator` must be one of {sorted(_ESTIMATORS)}; got {estimator!r}. Use estimator='harrell-davis'."
        )
    return _slo_cap(times, flags, q_value, cap, estimator)


# --------------------------------------------------------------------------------------------------
# Summary


@dataclass(frozen=True)
class CensoringSummary:
    """The censoring block of a report (DESIGN.md §3).

    Attributes
    ----------
    n : int
        Sample size.
    n_censored : int
        Number of right-censored observations (timeouts).
    timeouts_rate : float
        ``n_censored / n`` (NaN for an empty sample).
    p95_km : float
        Kaplan–Meier quantile at ``q``; NaN when censoring exceeds ``km_max_censored`` or the curve
        never reaches ``q``.
    p95_slo_cap : float
        SLO-cap quantile at ``q`` (Harrell–Davis).
    censoring_mode : {"none", "km", "slo_cap"}
        ``"none"``: no censored observation; ``"km"``: censored observations and a usable KM
        estimate; ``"slo_cap"``: KM unusable, read ``p95_slo_cap``.
    km_flag : bool
        True when ``p95_km`` is NaN (KM unusable).
    q : float
        The probability (0.95 unless asked otherwise; the field names keep "p95").
    cap_ms : float
        The SLO cap.
    km_max_censored : float
        The censoring share above which KM is not reported.
    """

    n: int
    n_censored: int
    timeouts_rate: float
    p95_km: float
    p95_slo_cap: float
    censoring_mode: CensoringMode
    km_flag: bool
    q: float
    cap_ms: float
    km_max_censored: float

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        return _frame(asdict(self))


def censoring_summary(
    time: ArrayLike,
    censored: ArrayLike,
    q: float = 0.95,
    *,
    cap_ms: float,
    km_max_censored: float = 0.05,
) -> CensoringSummary:
    r"""Kaplan–Meier and SLO-cap quantiles, timeout rate and censoring mode, in one record.

    Parameters
    ----------
    time : array_like
        1-D non-negative durations in ms; for a censored observation, the elapsed time at cut-off.
    censored : array_like of bool
        ``True`` where the observation is right-censored (e.g. a timeout).
    q : float, default 0.95
        Probability, strictly between 0 and 1.
    cap_ms : float
        SLO cap in ms for :func:`slo_cap_quantile`. Keyword-only, required.
    km_max_censored : float, default 0.05
        Largest censored share for which the KM quantile is reported, in [0, 1].

    Returns
    -------
    CensoringSummary
        When ``p95_km`` is NaN a single :class:`~tsglab.errors.DegenerateStatisticWarning` says why.

    Notes
    -----
    ``p95_km`` is :func:`km_quantile` unless :math:`n_\text{censored}/n > ` ``km_max_censored``;
    at the default 0.05 = 1 − 0.95 more censoring than that can leave the curve above 0.05 for good,
    and even when it reaches q the estimate leans on few events. ``p95_slo_cap`` is
    :func:`slo_cap_quantile` with the Harrell–Davis estimator.

    References
    ----------
    .. [1] DESIGN.md §3 (censoring protocol).
    """
    times, flags = _validate_censored_sample(time, censored)
    q_value = _validate_scalar_q(q)
    cap = _validate_cap(cap_ms)
    limit = float(km_max_censored)
    if not (0.0 <= limit <= 1.0):
        raise InvalidArgument(
            f"`km_max_censored` must be a share in [0, 1]; got {km_max_censored!r}. The protocol "
            "default is 0.05."
        )
    n = int(times.size)
    n_censored = int(flags.sum())
    rate = n_censored / n if n else float("nan")

    reason = ""
    p95_km = float("nan")
    if n == 0:
        reason = "the sample is empty"
    elif rate > limit:
        reason = f"the censored share {rate:.4g} exceeds km_max_censored={limit}"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateStatisticWarning)
            km = km_quantile(times, flags, q_value)
        if km.reached:
            p95_km = km.estimate
        else:
            reason = f"the Kaplan–Meier curve never reaches q={q_value}"
    km_flag = bool(np.isnan(p95_km))
    if km_flag:
        warnings.warn(
            f"Kaplan–Meier quantile not reported: {reason} (n={n}, {n_censored} censored); p95_km is "
            "NaN, read p95_slo_cap.",
            DegenerateStatisticWarning,
            stacklevel=2,
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateStatisticWarning)  # empty sample: already warned
        slo = _slo_cap(times, flags, q_value, cap, "harrell-davis")

    if n_censored == 0:
        mode: CensoringMode = "none"
    elif km_flag:
        mode = "slo_cap"
    else:
        mode = "km"
    return CensoringSummary(
        n=n,
        n_censored=n_censored,
        timeouts_rate=rate,
        p95_km=p95_km,
        p95_slo_cap=slo.estimate,
        censoring_mode=mode,
        km_flag=km_flag,
        q=q_value,
        cap_ms=cap,
        km_max_censored=limit,
    )
