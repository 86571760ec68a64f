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

:func:`load_arm_pair` picks the two arms of a report — from one run, or the baseline from another run
(``--vs``) — and checks that they can be paired at all: the same suite (its hash in ``run.json``), and
the same prompt text behind every shared prompt id (the events' ``prompt_sha``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tsglab.errors import InvalidArgument, InvalidArgumentType, RunError

__all__ = [
    "KEYS",
    "OCCURRENCE",
    "ArmPair",
    "check_same_prompts",
    "comparison_dir",
    "ladder_of",
    "load_arm_pair",
    "occurrences",
    "pair_arms",
    "shared_pairs",
]

#: Column added by :func:`pair_arms`: the k-th time (0-based) the prompt id appears in its arm.
OCCURRENCE = "occurrence"
#: What identifies a request across arms.
KEYS = ("prompt_id", OCCURRENCE)
_REQUIRED = ("prompt_id", "seq")


def _validate_arm(frame: pd.DataFrame, name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidArgumentType(f"`{name}` must be a pandas DataFrame of one arm's requests; got "
                                  f"{type(frame).__name__}.")
    missing = [column for column in _REQUIRED if column not in frame.columns]
    if missing:
        raise InvalidArgument(f"`{name}` has no column {missing[0]!r} (columns: {list(frame.columns)}); pairing needs "
                         "'prompt_id' and 'seq' per request. Build the frame with tsglab.report.frame.events_frame.")
    if OCCURRENCE in frame.columns:
        raise InvalidArgument(f"`{name}` already has a column {OCCURRENCE!r}; pair_arms computes it from 'seq'. "
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


# ---- the two arms of a report ------------------------------------------------------------------


@dataclass(frozen=True)
class ArmPair:
    """The two arms a report compares, restricted to their shared (prompt id, occurrence) requests.

    ``out_dir`` is where the report is written: the run's own directory for arms of one run, and a
    comparison directory of its own for arms of two runs (never the other run's files)."""

    run_dir: Path
    vs_dir: Path | None
    baseline_label: str
    gateway_label: str
    baseline: pd.DataFrame = field(repr=False)
    gateway: pd.DataFrame = field(repr=False)
    manifest: dict = field(repr=False)
    vs_manifest: dict | None = field(repr=False)
    ladder: tuple[str, ...]
    out_dir: Path
    #: requests per arm left out because the other arm has no request of that (prompt id, occurrence) — yet,
    #: when the report is taken mid-run, or ever, when one arm stopped early
    unpaired: dict[str, int] = field(default_factory=dict)

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        return {self.baseline_label: self.baseline, self.gateway_label: self.gateway}

    @property
    def status(self) -> str:
        statuses = {self.manifest.get("status", "unknown")}
        if self.vs_manifest is not None:
            statuses.add(self.vs_manifest.get("status", "unknown"))
        return statuses.pop() if len(statuses) == 1 else "incomplete"


def comparison_dir(run_dir: Path, vs_dir: Path) -> Path:
    """Where a report of ``run_dir`` against run ``vs_dir`` is written: a sibling directory named after both."""
    return run_dir.parent / f"{run_dir.name}--vs--{vs_dir.name}"


def ladder_of(manifest: dict) -> tuple[str, ...]:
    """The run's tier names, lowest rung first, as its spec gave them."""
    from tsglab.config import DEFAULT_TIERS

    tiers = (manifest.get("spec") or {}).get("tiers") or {}
    return tuple(tiers) or DEFAULT_TIERS


def check_same_prompts(base: pd.DataFrame, gate: pd.DataFrame, labels: tuple[str, str]) -> None:
    """Refuse to pair two requests under one prompt id when their prompt texts differ (``prompt_sha``).

    Events written before prompt hashes were recorded (an empty ``prompt_sha``) cannot be checked and
    pass; a mismatch names the first ids and the fix."""
    if "prompt_sha" not in base or "prompt_sha" not in gate:
        return
    known_b = base.loc[base["prompt_sha"] != "", ["prompt_id", "prompt_sha"]].drop_duplicates("prompt_id")
    known_g = gate.loc[gate["prompt_sha"] != "", ["prompt_id", "prompt_sha"]].drop_duplicates("prompt_id")
    both = known_b.merge(known_g, on="prompt_id", suffixes=("_b", "_g"))
    differ = both[both["prompt_sha_b"] != both["prompt_sha_g"]]
    if len(differ):
        ids = ", ".join(differ["prompt_id"].astype(str).head(5))
        raise RunError(
            f"arms {labels[0]!r} and {labels[1]!r} sent different prompts under the same id ({len(differ)} id(s), "
            f"e.g. {ids}); a paired comparison needs identical prompts. Re-run both arms on one suite version "
            "(the suite changed between the runs)."
        )


def load_arm_pair(
    run_dir: str | os.PathLike,
    *,
    vs: str | os.PathLike | None = None,
    baseline_arm: str = "baseline",
    gateway_arm: str | None = None,
    allow_suite_change: bool = False,
) -> ArmPair:
    """Read the run(s), pick the baseline and gateway arms and pair them request by request.

    With ``vs`` the baseline arm is taken from run ``vs``: it must have an arm named ``baseline_arm``
    (no fallback to another arm), and both runs must have run the same suite (its sha256 in
    ``run.json``) unless ``allow_suite_change`` — then only prompts whose texts are identical in both
    runs may pair. Either way a prompt id that names different prompt texts in the two arms is refused.
    """
    from tsglab.events import read_manifest
    from tsglab.report.frame import events_frame

    run_dir = Path(run_dir)
    frame, manifest = events_frame(_events_of(run_dir)), read_manifest(run_dir)
    arms = list(dict.fromkeys(frame["arm"]))
    vs_dir = vs_manifest = None
    ladder = ladder_of(manifest)
    if vs is not None:
        vs_dir = Path(vs)
        if vs_dir.resolve() == run_dir.resolve():
            raise RunError(f"--vs names the run itself ({run_dir}); to compare two arms of one run, leave out --vs "
                           "and pass --baseline/--gateway.")
        other, vs_manifest = events_frame(_events_of(vs_dir)), read_manifest(vs_dir)
        other_arms = list(dict.fromkeys(other["arm"]))
        if baseline_arm not in other_arms:
            raise RunError(f"{vs_dir}: no arm named {baseline_arm!r} (arms: {other_arms}); pass the baseline arm of "
                           f"that run with baseline_arm= (CLI: --baseline ARM).")
        _check_same_suite(run_dir, manifest, vs_dir, vs_manifest, allow_suite_change)
        base = other[other["arm"] == baseline_arm]
        base_label = f"{vs_dir.name}:{baseline_arm}"
        candidates = [a for a in arms if a != baseline_arm] or arms
        ladder = tuple(dict.fromkeys([*ladder, *ladder_of(vs_manifest)]))
        out_dir = comparison_dir(run_dir, vs_dir)
    else:
        if baseline_arm not in arms:
            raise RunError(f"{run_dir}: no arm named {baseline_arm!r} (arms: {arms}); pass baseline_arm= "
                           "(CLI: --baseline ARM) or compare with another run via vs= (CLI: --vs RUN).")
        base = frame[frame["arm"] == baseline_arm]
        base_label = baseline_arm
        candidates = [a for a in arms if a != baseline_arm]
        if not candidates:
            raise RunError(f"{run_dir}: only the baseline arm has events; nothing to compare.")
        out_dir = run_dir
    gateway_arm = gateway_arm or candidates[0]
    if gateway_arm not in arms:
        raise RunError(f"{run_dir}: no arm named {gateway_arm!r} (arms: {arms}).")
    gate = frame[frame["arm"] == gateway_arm]
    check_same_prompts(base, gate, (base_label, gateway_arm))
    full = {base_label: len(base), gateway_arm: len(gate)}
    base, gate = shared_pairs(base, gate)
    unpaired = {arm: count - len(base) for arm, count in full.items() if count > len(base)}
    if not len(base):
        raise RunError(f"{run_dir}: the arms share no prompt ids; a paired comparison needs the same prompts.")
    return ArmPair(run_dir=run_dir, vs_dir=vs_dir, baseline_label=base_label, gateway_label=gateway_arm,
                   baseline=base, gateway=gate, manifest=manifest, vs_manifest=vs_manifest, ladder=ladder,
                   out_dir=out_dir, unpaired=unpaired)


def _events_of(run_dir: Path) -> list:
    """The run's events; a run without any is an error naming its file (nothing to report)."""
    from tsglab.events import EVENTS_FILE, read_events

    events = read_events(run_dir, check_run=True)
    if not events:
        raise RunError(f"{run_dir / EVENTS_FILE}: no events (the run recorded no request); nothing to report. "
                       "Resume the run (tsglab run SPEC --resume RUN_DIR) or report another one.")
    return events


def _check_same_suite(run_dir: Path, manifest: dict, vs_dir: Path, vs_manifest: dict, allow_change: bool) -> None:
    sha, vs_sha = manifest.get("suite_sha256"), vs_manifest.get("suite_sha256")
    if sha and vs_sha and sha != vs_sha and not allow_change:
        raise RunError(
            f"{run_dir} ran suite {manifest.get('suite')} (sha256[:16] {sha}) but {vs_dir} ran "
            f"{vs_manifest.get('suite')} (sha256[:16] {vs_sha}); prompts behind the same id may differ. Re-run on one "
            "suite, or pass allow_suite_change=True (CLI: --allow-suite-change) to pair only prompts whose texts "
            "match in both runs."
        )
