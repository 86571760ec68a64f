"""tsglab.report.pairing: arms paired by (prompt id, occurrence)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsglab.events import synthetic_event
from tsglab.report.frame import events_frame
from tsglab.report.pairing import occurrences, pair_arms, shared_pairs


def _arm(prompt_ids: list[str], *, name: str, seq: list[int] | None = None, index=None) -> pd.DataFrame:
    """The report frame of one arm's synthetic events, cut to the columns the pairing tests look at."""
    seqs = list(range(len(prompt_ids))) if seq is None else seq
    offset = 0.5 if name == "gateway" else 0.0
    events = [synthetic_event(pid, arm=name, seq=s, quality=i + offset, raw_ms=100.0 * (i + 1) + 14 * offset)
              for i, (pid, s) in enumerate(zip(prompt_ids, seqs, strict=True))]
    frame = events_frame(events)[["arm", "prompt_id", "seq", "quality", "co_ms"]]
    if index is not None:
        frame.index = index
    return frame


def test_unique_ids_are_exactly_the_old_one_to_one_merge():
    base = _arm(["p3", "p1", "p2", "p0"], name="baseline", index=[10, 11, 12, 13])
    gate = _arm(["p0", "p2", "p1", "p4"], name="gateway", index=[50, 51, 52, 53])  # p3 / p4 in one arm only
    old = base.merge(gate, on="prompt_id", suffixes=("_b", "_g"), validate="one_to_one")
    new = pair_arms(base, gate)
    assert (new["occurrence"] == 0).all()
    pd.testing.assert_frame_equal(new.drop(columns="occurrence"), old)
    assert new["prompt_id"].tolist() == ["p1", "p2", "p0"]  # base's order, unmatched ids dropped


def test_every_non_key_column_gets_its_suffix_even_when_only_one_arm_has_it():
    base = _arm(["a", "b"], name="baseline").assign(only_base=1)
    gate = _arm(["b", "a"], name="gateway")
    pairs = pair_arms(base, gate)
    assert list(pairs.columns) == ["arm_b", "prompt_id", "seq_b", "quality_b", "co_ms_b", "only_base_b",
                                   "occurrence", "arm_g", "seq_g", "quality_g", "co_ms_g"]


def test_repeated_ids_pair_kth_with_kth_in_seq_order():
    # rows are out of seq order on purpose: occurrence follows seq, not row position
    base = _arm(["p1", "p0", "p1", "p0", "p1"], name="baseline", seq=[4, 0, 1, 2, 3])
    gate = _arm(["p0", "p1", "p0", "p1"], name="gateway", seq=[0, 1, 2, 3])
    with pytest.raises(pd.errors.MergeError):  # what the report died with
        base.merge(gate, on="prompt_id", suffixes=("_b", "_g"), validate="one_to_one")
    assert occurrences(base).tolist() == [2, 0, 0, 1, 1]
    pairs = pair_arms(base, gate)
    got = sorted(zip(pairs["prompt_id"], pairs["occurrence"], pairs["seq_b"], pairs["seq_g"], strict=True))
    # baseline p1 at seq 1, 3, 4 → occurrences 0, 1, 2; the gateway has two p1s, so seq 4 goes unpaired
    assert got == [("p0", 0, 0, 0), ("p0", 1, 2, 2), ("p1", 0, 1, 1), ("p1", 1, 3, 3)]
    assert pairs.index.tolist() == [0, 1, 2, 3]


def test_repeated_ids_are_not_a_cross_product():
    base = _arm(["p"] * 3, name="baseline")
    gate = _arm(["p"] * 3, name="gateway")
    assert len(base.merge(gate, on="prompt_id")) == 9  # what a plain merge would count
    pairs = pair_arms(base, gate)
    assert len(pairs) == 3
    assert pairs["seq_b"].tolist() == pairs["seq_g"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(pairs["quality_g"] - pairs["quality_b"], 0.5)


def test_shared_pairs_restricts_both_arms_and_is_stable():
    base = _arm(["p1", "p0", "p1", "p2", "p1"], name="baseline")
    gate = _arm(["p1", "p1", "p0", "p3"], name="gateway")
    base_kept, gate_kept = shared_pairs(base, gate)
    assert base_kept.index.tolist() == [0, 1, 2]
    assert gate_kept.index.tolist() == [0, 1, 2]
    assert list(base_kept.columns) == list(base.columns)  # nothing added
    assert len(base_kept) == len(gate_kept) == len(pair_arms(base, gate))
    pd.testing.assert_frame_equal(pair_arms(base_kept, gate_kept), pair_arms(base, gate))


def test_errors_name_the_column_and_the_fix():
    gate = _arm(["a"], name="gateway")
    with pytest.raises(ValueError, match=r"`base` has no column 'seq' .*Build the frame with"):
        pair_arms(_arm(["a"], name="baseline").drop(columns="seq"), gate)
    with pytest.raises(ValueError, match=r"`gate` already has a column 'occurrence'; .*Drop or rename it"):
        pair_arms(_arm(["a"], name="baseline"), gate.assign(occurrence=0))
    with pytest.raises(TypeError, match=r"`base` must be a pandas DataFrame .*got list"):
        shared_pairs([], gate)
