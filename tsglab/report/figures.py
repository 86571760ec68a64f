"""Figures: latency ECDFs per arm (Raw and CO), since HD quantiles of bimodal latencies can fall in gaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def latency_ecdf(frames: dict[str, pd.DataFrame], out: str | Path):
    """Plot the ECDF of raw and CO latency per arm; saves PNG and returns the matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, column, title in ((axes[0], "raw_ms", "Raw (completed − dispatched)"),
                              (axes[1], "co_ms", "CO (completed − intended start)")):
        for arm, frame in frames.items():
            values = np.sort(frame[column].to_numpy(float))
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
