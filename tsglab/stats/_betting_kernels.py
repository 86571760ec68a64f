"""numba kernel of the betting test for a bounded mean, beside its plain-Python twin.

Rows of ``y`` are orderings (permutations) of one sample in [0, 1]; for each row the kernel runs the
capital process of a bettor against H0: E[y] <= mu0 and returns the final capital. Bets follow the
truncated aGRAPA rule of Waudby-Smith & Ramdas (2024) with the running mean and variance of the
values seen so far (predictable: a bet never uses the value it is placed on).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tsglab.stats._config import NJIT

__all__ = ["betting_capital", "betting_capital_python"]


def betting_capital_python(y: np.ndarray, mu0: float, max_bet_share: float) -> np.ndarray:
    rows, n = y.shape
    out = np.empty(rows)
    cap = max_bet_share / mu0  # 1 + bet * (y - mu0) >= 1 - max_bet_share > 0 for every y in [0, 1]
    for r in range(rows):
        log_capital = 0.0
        total = 0.5  # prior pseudo-observation at 1/2, as in the reference: the first bet is finite
        total_sq_dev = 0.25
        count = 1.0
        for t in range(n):
            mean = total / count
            var = total_sq_dev / count
            edge = mean - mu0
            bet = edge / (var + edge * edge) if edge > 0 else 0.0
            if bet > cap:
                bet = cap
            log_capital += np.log1p(bet * (y[r, t] - mu0))
            total += y[r, t]
            count += 1.0
            new_mean = total / count
            total_sq_dev += (y[r, t] - new_mean) ** 2
        out[r] = np.exp(log_capital)
    return out


betting_capital = njit(**NJIT)(betting_capital_python)
