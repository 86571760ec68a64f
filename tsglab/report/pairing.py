"""Pairing the baseline and gateway arms of a run request by request.

The arms of an experiment run the same prompt ids, but a prompt id need not be unique within an
arm: the paper's legacy bench re-sent the prompts it warmed up on, and a suite can be cycled. A
plain merge on ``prompt_id`` then either raises (``validate="one_to_one"``) or pairs every copy with
every copy (a cross product that counts one prompt many times). Here the key of a request is
``(prompt_id, occurrence)``, where ``occurrence`` is 0 for the first time the prompt id appears in
its arm in ``seq`` order, 1 for the second, and so on: the k-th baseline request of a prompt is
paired with the k-th gateway request of the same prompt, and an occurrence that only one arm has is
left out. With unique prompt ids every occurrence is 0 and the pairing is the plain merge on
``prompt_id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["KEYS", "OCCURRENCE", "occurrences", "pair_arms", "shared_pairs"]

#: Column added by :func:`pair_arms`: the k-th time (0-based) the prompt id appears in its arm.
OCCURRENCE = "occurrence"
#: What identifies a request across arms.
KEYS = ("prompt_id", OCCURRENCE)
_REQUIRED = ("prompt_id", "seq")


def _validate_arm(frame: pd.DataFrame, name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`{name}` must be a pandas DataFrame of one arm's requests; got {type(frame).__name__}.")
    missing = [column for column in _REQUIRED if column not in frame.columns]
    if missing:
        raise ValueError(f"`{name}` has no column {missing[0]!r} (columns: {list(frame.columns)}); pairing needs "
                         "'prompt_id' and 'seq' per request. Build the frame with tsglab.report.frame.events_frame.")
    if OCCURRENCE in frame.columns:
        raise ValueError(f"`{name}` already has a column {OCCURRENCE!r}; pair_arms computes it from 'seq'. "
                         f"Drop or rename it first (frame.drop(columns={OCCURRENCE!r})).")


def occurrences(frame: pd.DataFrame) -> np.ndarray:
    """For each row of one arm (in the frame's row order), how many earlier rows have its prompt id.

    "Earlier" is in ``seq`` order; rows with equal ``seq`` keep their order in the frame.
    """
    order = np.argsort(frame["seq"].to_numpy(), kind="stable")
    # positional, not by index label: an arm cut out of a larger frame may carry any index
    in_seq_order = frame["prompt_id"].iloc[order].reset_index(drop=True)
    counts = in_seq_order.groupby(in_seq_order, sort=False).cumcount().to_numpy()
    result = np.empty(len(frame), dtype=np.int64)
    result[order] = counts
    return result


def _keyed(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    _validate_arm(frame, name)
    return frame.assign(**{OCCURRENCE: occurrences(frame)})


def pair_arms(base: pd.DataFrame, gate: pd.DataFrame) -> pd.DataFrame:
    """One row per (prompt id, occurrence) present in both arms.

    Parameters
    ----------
    base, gate : DataFrame
        The baseline and gateway requests, one row each, with at least ``prompt_id`` and ``seq``
        (as :func:`tsglab.report.frame.events_frame` builds them).

    Returns
    -------
    DataFrame
        ``prompt_id`` and ``occurrence`` once, every other column of ``base`` with the suffix ``_b``
        and of ``gate`` with ``_g``; rows in ``base``'s order, index ``0..n-1``.

    Notes
    -----
    Repeated prompt ids are paired by occurrence: the k-th request of a prompt id in the baseline
    arm (in ``seq`` order) is paired with the k-th request of that prompt id in the gateway arm;
    occurrences beyond the smaller count are dropped. With unique prompt ids the result is
    ``base.merge(gate, on="prompt_id", suffixes=("_b", "_g"), validate="one_to_one")`` plus an
    ``occurrence`` column of zeros.
    """
    keyed_base, keyed_gate = _keyed(base, "base"), _keyed(gate, "gate")
    # suffix every non-key column up front, so that a column only one arm has is suffixed too
    keyed_base = keyed_base.rename(columns={c: f"{c}_b" for c in keyed_base.columns if c not in KEYS})
    keyed_gate = keyed_gate.rename(columns={c: f"{c}_g" for c in keyed_gate.columns if c not in KEYS})
    return keyed_base.merge(keyed_gate, on=list(KEYS), how="inner", validate="one_to_one")


def shared_pairs(base: pd.DataFrame, gate: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each arm restricted to the requests :func:`pair_arms` pairs; columns and row order unchanged.

    A prompt id sent three times to the baseline and twice to the gateway keeps its first two
    baseline requests (in ``seq`` order). The restriction is stable: :func:`pair_arms` on the
    restricted arms gives the same pairs as on the full arms, and ``len`` of either arm is the
    number of pairs.
    """
    keyed_base, keyed_gate = _keyed(base, "base"), _keyed(gate, "gate")
    base_keys = pd.MultiIndex.from_frame(keyed_base[list(KEYS)])
    gate_keys = pd.MultiIndex.from_frame(keyed_gate[list(KEYS)])
    return base[base_keys.isin(gate_keys)], gate[gate_keys.isin(base_keys)]
