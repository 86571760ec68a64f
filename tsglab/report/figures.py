"""Figures: latency ECDFs per arm (Raw and CO), since HD quantiles of bimodal latencies can fall in gaps,
and the run's timeline (latency and dispatch lag against the intended start), where a stall or a
backlog shows as a ramp in CO latency that raw latency does not have.

Axes are logarithmic, so values are clipped below at :data:`FLOOR_MS` (a 0 ms latency stays visible), an
arm without an answered request draws no ECDF, and a figure with nothing to draw is not made: the
function returns None (a run where every request failed has no latency to plot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FLOOR_MS = 1e-3  # the smallest value a log axis shows


def _answered(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame["failed"]]  # failures have no latency; timeouts are censored at their elapsed time


def latency_ecdf(frames: dict[str, pd.DataFrame], out: str | Path):
    """Plot the ECDF of raw and CO latency per arm; saves PNG and returns the matplotlib figure."""
    if not any(len(_answered(frame)) for frame in frames.values()):
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, column, title in ((axes[0], "raw_ms", "Raw (completed − dispatched)"),
                              (axes[1], "co_ms", "CO (completed − intended start)")):
        for arm, frame in frames.items():
            values = np.sort(np.maximum(_answered(frame)[column].to_numpy(float), FLOOR_MS))
            if not len(values):
                continue  # this arm answered nothing: no curve (the report says why)
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", label=arm)
        ax.axhline(0.95, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel("latency (ms, log scale)")
    axes[0].set_ylabel("ECDF")
    axes[0].legend(loc="lower right")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return fig


def load_timeline(frames: dict[str, pd.DataFrame], out: str | Path):
    """Raw and CO latency (top) and dispatch lag (bottom) against each request's intended start; failed
    requests as red ticks. None when there is no request at all."""
    if not any(len(frame) for frame in frames.values()):
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.2), sharex=True, height_ratios=(2, 1))
    t0 = min(int(frame["intended_ns"].min()) for frame in frames.values() if len(frame))
    for arm, frame in frames.items():
        answered = _answered(frame)
        t = (answered["intended_ns"].to_numpy(np.int64) - t0) / 1e9
        co = np.maximum(answered["co_ms"].to_numpy(float), FLOOR_MS)
        line = top.plot(t, co, ".", ms=3, label=f"{arm} CO")[0]
        top.plot(t, np.maximum(answered["raw_ms"].to_numpy(float), FLOOR_MS), "x", ms=3, color=line.get_color(),
                 alpha=0.5, label=f"{arm} raw")
        failed = frame[frame["failed"]]
        if len(failed):
            top.plot((failed["intended_ns"].to_numpy(np.int64) - t0) / 1e9,
                     np.full(len(failed), co.max() if len(co) else 1.0), "|", color="red", ms=8, label=f"{arm} failed")
        bottom.plot((frame["intended_ns"].to_numpy(np.int64) - t0) / 1e9,
                    np.maximum(frame["dispatch_lag_ms"].to_numpy(float), FLOOR_MS), ".", ms=3, color=line.get_color())
    top.set_yscale("log")
    top.set_ylabel("latency (ms)")
    top.legend(loc="upper left", fontsize=7, ncol=2)
    bottom.set_yscale("log")
    bottom.set_ylabel("dispatch lag (ms)")
    bottom.set_xlabel("intended start (s from the first request)")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return fig
