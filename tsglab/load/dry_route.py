"""Routing replay: the initial tier every arm would give every selected prompt, before anything is sent.

An ablation is a parameter set, and a parameter that never changes a decision on the prompts of a run
makes its arm a copy of another: the comparison then measures noise. With the paper's defaults the fast
lane is such a parameter — it sends a request to the lowest rung only when its score is at most
``force_light_score`` (0.30), and a score below ``thr_std`` (0.40) starts there anyway — so ablation B
(``force_light_len: 0``) routes exactly like TSG.

:func:`replay_routing` runs the planner and the router (:func:`tsglab.policy.plan`,
:func:`tsglab.policy.route`: the functions the gateway calls, so the replay cannot drift from the run)
over the prompts for every arm, and compares every pair of arms whose parameters differ. A pair is
*identical* when both arms route every prompt to the same tier and every parameter in which they differ
acts only through that initial route (planner and router parameters; for two baseline arms every
parameter but ``baseline_tier``). A pair that routes the same but differs in what happens after the
route (``same_tier_repair``, ``max_upgrades``, the checks, or a baseline against a gateway arm, which
checks, repairs and upgrades) is recorded as *same routes*, without a warning: its arms still differ.
Two arms with equal parameters (an A/A comparison) are left out: that copy is deliberate.

The runner warns (:class:`~tsglab.errors.IdenticalRoutingWarning`) before the schedule starts and
records the replay in ``run.json`` under ``routing_replay``; the report prints the warnings under its
verdict (:func:`routing_warnings`). Planning is shared between arms with the same planner parameters;
the replay of the bundled suite (221 prompts) over the six arms of ``experiments/ablations.yaml`` takes
a few milliseconds (``tests/test_identical_routing.py`` bounds it).
"""

from __future__ import annotations

import inspect
import itertools
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsglab.config import DEFAULT_TIERS, ExperimentSpec, PolicyConfig
from tsglab.errors import IdenticalRoutingWarning, TsglabError
from tsglab.policy import PlanReport, plan, route
from tsglab.suite import SuiteItem

__all__ = [
    "PLANNER_FIELDS",
    "ROUTER_FIELDS",
    "RoutingReplay",
    "SameRouting",
    "replay_routing",
    "replay_spec",
    "routing_warnings",
    "warn_identical_routing",
]

PLANNER_FIELDS: tuple[str, ...] = ("scorer", "chars_per_unit", "marks_per_unit", "heavy_weight", "score_cap")
"""The :class:`PolicyConfig` fields the planner reads (:func:`tsglab.policy.plan`)."""
ROUTER_FIELDS: tuple[str, ...] = ("thr_std", "thr_enh", "json_floor", "code_floor", "def_floor", "force_light_len",
                                  "force_light_score", "baseline_tier")
"""The fields the router reads besides ``kind`` (:func:`tsglab.policy.route`). A field in neither tuple (the
executor's, or one added later) is taken to act after the initial route, so a difference in it is never
called "no effect"."""
_ROUTE_ONLY = frozenset(PLANNER_FIELDS + ROUTER_FIELDS)
_NOT_ROUTED = "(not routed)"  # a prompt the planner or router rejected: the run records it as an error


@dataclass(frozen=True)
class SameRouting:
    """Two arms that give every replayed prompt the same initial tier.

    ``differing`` maps every parameter in which the arms differ (``label`` aside) to its two values, in
    the order of ``arms``; ``beyond_routing`` names those that act after the initial route (they make the
    arms differ all the same). ``identical`` is true when there are none: the differing parameters have
    no effect on these prompts.
    """

    arms: tuple[str, str]
    n_prompts: int
    routes: dict[str, int]
    differing: dict[str, tuple[Any, Any]]
    beyond_routing: tuple[str, ...]
    explanation: str = ""

    @property
    def identical(self) -> bool:
        return not self.beyond_routing

    def message(self) -> str:
        """One sentence for the terminal, ``run.json`` and the report."""
        first, second = self.arms
        counts = ", ".join(f"{tier} {n}" for tier, n in self.routes.items())
        values = "; ".join(f"{name} ({first} {_show(a)}, {second} {_show(b)})"
                           for name, (a, b) in self.differing.items())
        if not self.identical:
            return (f"arms {first!r} and {second!r} route every one of the {self.n_prompts} prompts to the same "
                    f"initial tier ({counts}); they differ after the route in {', '.join(self.beyond_routing)}. "
                    f"All differing parameters: {values}.")
        which = "which has" if len(self.differing) == 1 else "which have"
        why = f": {self.explanation}" if self.explanation else ""
        return (f"arms {first!r} and {second!r} route every one of the {self.n_prompts} prompts to the same tier "
                f"({counts}) and differ only in {values}, {which} no effect on these prompts{why}. Comparing them "
                "measures noise only; drop one arm or choose values that change a route.")

    def to_dict(self) -> dict[str, Any]:
        return {"arms": list(self.arms), "identical": self.identical, "n_prompts": self.n_prompts,
                "routes": dict(self.routes),
                "differing": {name: list(values) for name, values in self.differing.items()},
                "beyond_routing": list(self.beyond_routing), "message": self.message()}


@dataclass(frozen=True)
class RoutingReplay:
    """The replay of one spec's arms over its prompts.

    ``tiers`` maps each arm to the initial tier of every prompt (in ``prompt_ids`` order); ``same_routes``
    holds every pair of differently configured arms that route all prompts alike, ``identical`` those of
    them that differ in nothing else. ``elapsed_ms`` is the replay's own time.
    """

    prompt_ids: tuple[str, ...]
    tiers: dict[str, tuple[str, ...]]
    same_routes: tuple[SameRouting, ...]
    elapsed_ms: float
    ladder: tuple[str, ...] = DEFAULT_TIERS

    @property
    def identical(self) -> tuple[SameRouting, ...]:
        return tuple(pair for pair in self.same_routes if pair.identical)

    def warnings(self) -> list[str]:
        return [pair.message() for pair in self.identical]

    def to_dict(self) -> dict[str, Any]:
        """What ``run.json`` keeps (``routing_replay``): route counts per arm and the pairs, not every route."""
        return {"n_prompts": len(self.prompt_ids), "elapsed_ms": round(self.elapsed_ms, 3),
                "routes": {arm: _counts(tiers, self.ladder) for arm, tiers in self.tiers.items()},
                "same_routes": [pair.to_dict() for pair in self.same_routes], "warnings": self.warnings()}


def replay_routing(arms: Mapping[str, PolicyConfig], items: Sequence[SuiteItem], *,
                   ladder: Sequence[str] = DEFAULT_TIERS) -> RoutingReplay:
    """Plan and route every item for every arm (nothing is sent) and compare the arms pairwise.

    ``arms`` maps arm names to their policies (``ExperimentSpec.arms``), ``items`` the prompts the run
    selects, ``ladder`` the spec's tier names, lowest rung first. A prompt the planner or router rejects
    (the run would record it as an error) counts as routed to ``"(not routed)"`` in every arm that
    rejects it.
    """
    started = time.perf_counter()
    ladder = tuple(ladder)
    plans: dict[tuple[Any, ...], list[PlanReport | None]] = {}
    tiers: dict[str, tuple[str, ...]] = {}
    for arm, config in arms.items():
        key = tuple(getattr(config, name) for name in PLANNER_FIELDS)
        if key not in plans:
            plans[key] = [_plan(item, config) for item in items]
        tiers[arm] = tuple(_route(report, config, ladder) for report in plans[key])
    pairs = itertools.combinations(arms, 2) if items else ()  # no prompt: nothing to route alike
    same = tuple(pair for a, b in pairs if (pair := _compare(a, b, arms[a], arms[b], tiers, ladder)) is not None)
    return RoutingReplay(tuple(item.id for item in items), tiers, same, (time.perf_counter() - started) * 1e3,
                         ladder)


def replay_spec(spec: ExperimentSpec, items: Sequence[SuiteItem]) -> RoutingReplay:
    """:func:`replay_routing` over the arms and ladder of ``spec``."""
    return replay_routing(spec.arms, items, ladder=spec.ladder)


def warn_identical_routing(replay: RoutingReplay, *, source: str | os.PathLike = "", stacklevel: int = 2) -> None:
    """One :class:`~tsglab.errors.IdenticalRoutingWarning` per identical pair, every time (not once per place).

    With ``source`` (the spec file) the warning points at the line that defines the pair's second arm, so
    the terminal shows ``spec.yaml:LINE: IdenticalRoutingWarning: ...`` and that line; without it, at the
    caller's line (``stacklevel`` as for :func:`warnings.warn`).
    """
    for pair in replay.identical:
        where = _arm_line(source, pair.arms[1]) if source else None
        if where is None:
            where = _caller(stacklevel)
        # warn_explicit without a registry: a second run of the same spec in one session warns again
        warnings.warn_explicit(pair.message(), IdenticalRoutingWarning, where[0], where[1], module=__name__)


def _arm_line(source: str | os.PathLike, arm: str) -> tuple[str, int] | None:
    """Where ``arm`` is defined in the spec file ``source`` (its key under ``arms:``), if it can be found."""
    try:
        lines = Path(source).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    key = re.compile(rf"^\s+['\"]?{re.escape(arm)}['\"]?\s*:")
    arms_line = 0
    for number, text in enumerate(lines, start=1):
        if re.match(r"^arms\s*:", text):
            arms_line = number
        elif arms_line and text.strip() and not text.startswith((" ", "\t", "#")):
            break  # the next top-level key
        elif arms_line and key.match(text):
            return str(source), number
    return (str(source), arms_line) if arms_line else None  # a flow-style `arms:` line, or none at all


def _caller(levels: int) -> tuple[str, int]:
    """File and line ``levels`` frames above the function that calls this one (the outermost if fewer)."""
    here = inspect.currentframe()
    frame = here.f_back if here is not None and here.f_back is not None else here
    for _ in range(levels):
        if frame is None or frame.f_back is None:
            break
        frame = frame.f_back
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else ("<tsglab>", 0)


def routing_warnings(manifests: Iterable[Mapping[str, Any]]) -> list[str]:
    """The identical-routing warnings recorded in the ``run.json`` of each run (none for runs made before
    the replay existed), prefixed with the run id when there are several runs."""
    manifests = list(manifests)
    lines = []
    for manifest in manifests:
        replay = manifest.get("routing_replay")
        recorded = replay.get("warnings") if isinstance(replay, Mapping) else None
        if not isinstance(recorded, list):
            continue
        prefix = f"run {manifest.get('run_id')}: " if len(manifests) > 1 else ""
        lines += [f"{prefix}{message}" for message in recorded if isinstance(message, str)]
    return lines


def _plan(item: SuiteItem, config: PolicyConfig) -> PlanReport | None:
    try:
        return plan(item.prompt, config, json_schema=item.json_schema)
    except TsglabError:
        return None


def _route(report: PlanReport | None, config: PolicyConfig, ladder: tuple[str, ...]) -> str:
    if report is None:
        return _NOT_ROUTED
    try:
        return route(report, config, ladder).tier
    except TsglabError:
        return _NOT_ROUTED


def _compare(first: str, second: str, a: PolicyConfig, b: PolicyConfig, tiers: Mapping[str, tuple[str, ...]],
             ladder: tuple[str, ...]) -> SameRouting | None:
    values_a, values_b = _parameters(a), _parameters(b)
    differing = {name: (values_a[name], values_b[name]) for name in values_a if values_a[name] != values_b[name]}
    if not differing or tiers[first] != tiers[second]:
        return None
    if a.kind != b.kind:
        beyond: tuple[str, ...] = ("kind",)  # a baseline makes one unchecked attempt; a gateway checks, repairs
    elif a.kind == "baseline":
        beyond = ()  # a baseline arm reads nothing but baseline_tier, a route parameter
    else:
        beyond = tuple(name for name in differing if name not in _ROUTE_ONLY)
    explanation = _fast_lane_explanation(a, b, differing) if not beyond else ""
    return SameRouting((first, second), len(tiers[first]), _counts(tiers[first], ladder), differing, beyond,
                       explanation)


def _parameters(config: PolicyConfig) -> dict[str, Any]:
    values = config.to_dict()
    values.pop("label")
    return values


def _fast_lane_explanation(a: PolicyConfig, b: PolicyConfig, differing: Mapping[str, Any]) -> str:
    """Why the fast lane changes nothing, when only its parameters differ and it cannot go below the thresholds."""
    if a.kind != "tsg" or not set(differing) <= {"force_light_len", "force_light_score"}:
        return ""
    highest = max(a.force_light_score, b.force_light_score)
    if highest < a.thr_std:  # thr_std is equal in both arms here
        return (f"the fast lane sends a request to the lowest rung only when its score is <= force_light_score = "
                f"{_show(highest)}, and every score below thr_std = {_show(a.thr_std)} starts there anyway")
    return ""


def _counts(tiers: Sequence[str], ladder: tuple[str, ...]) -> dict[str, int]:
    """Prompts per tier, in ladder order (rejected prompts last)."""
    counts = Counter(tiers)
    return {tier: counts[tier] for tier in (*ladder, _NOT_ROUTED) if counts[tier]}


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)
