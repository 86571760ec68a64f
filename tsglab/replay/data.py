"""The replay data set: what every tier answered to every prompt, as arrays a routing kernel can read.

A TSG policy's outcome on one prompt depends on the prompt's planner features (length, marks, heavy
keywords, task) and on the answers of the attempts its cascade makes. Under greedy decoding an attempt
is a function of its request, and the executor's requests are few:

- the **initial** request at a tier (an upgrade sends exactly this request: the same messages, no repair
  turn), and
- the **repair** turn at a tier, sent after that tier's initial answer failed its check (the executor
  repairs once, at the tier where the first check failed, which is the request's initial tier).

So arrays ``[prompt, tier, kind]`` with kind 0 = initial, 1 = repair cover every path of every policy of
:class:`~tsglab.config.PolicyConfig` (thresholds, floors, fast lane, repair on/off, ``max_upgrades``,
``min_answer_chars``, ``check_refusal``, the planner's weights). Two approximations, stated in the data's
``notes`` and counted where they matter: the repair turn quotes the failure it was sent for, recorded
under the default checks (``min_answer_chars=1``, ``check_refusal=true``); a policy whose checks fail an
answer the default checks passed asks for a repair that was not recorded (it is replayed as failing
again and counted in :attr:`ReplayData.missing`). Upgrades are replayed by the initial attempt at the
upper tier, which is the same request.

:func:`collect` answers every prompt on every tier through the spec's ladder (the initial attempt, and
the repair when the initial answer fails the default checks), scoring every answer with the suite's
checks; rows are appended to ``replay.jsonl`` as they come, so an interrupted collection resumes.
:func:`from_events` builds the same arrays from logged gateway runs where their attempts cover the
cells (only the final answer's quality is in an event, so cells of earlier attempts have no quality
and are marked missing); :meth:`ReplayData.coverage` says how much is covered.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsglab.config import PolicyConfig
from tsglab.errors import BackendError, InvalidArgument, RunError
from tsglab.policy import TierLadder, check_answer, is_refusal, plan
from tsglab.suite import SuiteItem, score_answer

__all__ = ["KINDS", "TASKS", "ReplayData", "collect", "features_of", "from_events", "from_rows", "load_replay"]

KINDS = ("initial", "repair")
TASKS = ("general", "json", "code")
_DEFAULT_CHECKS = PolicyConfig()
_ROWS = "replay.jsonl"
_ARRAYS = "replay.npz"


@dataclass(frozen=True, eq=False)
class ReplayData:
    """Per prompt: planner features; per prompt × tier × kind: the answer's check facts, quality and cost.

    ``present[p, t, k]`` says whether the cell was recorded; ``error[p, t, k]`` that the attempt ended in a
    backend error or timeout (the cascade stops there, quality 0). ``json_ok`` is −1 for a prompt without a
    JSON contract, else 0/1. ``length`` is the stripped answer's length in characters.
    """

    ladder: tuple[str, ...]
    prompt_ids: tuple[str, ...]
    chars: np.ndarray
    marks: np.ndarray
    heavy: np.ndarray
    task: np.ndarray
    present: np.ndarray
    error: np.ndarray
    json_ok: np.ndarray
    length: np.ndarray
    refusal: np.ndarray
    quality: np.ndarray
    cost_ms: np.ndarray
    latency_ms: np.ndarray
    tokens: np.ndarray
    strata: tuple[str, ...] = ()  # the prompts' task stratum, for stratified resampling
    source: str = ""
    notes: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, t = len(self.prompt_ids), len(self.ladder)
        for name in ("chars", "marks", "heavy", "task"):
            if getattr(self, name).shape != (n,):
                raise InvalidArgument(f"ReplayData.{name} must have shape ({n},); got {getattr(self, name).shape}.")
        for name in ("present", "error", "json_ok", "length", "refusal", "quality", "cost_ms", "latency_ms",
                     "tokens"):
            if getattr(self, name).shape != (n, t, len(KINDS)):
                raise InvalidArgument(f"ReplayData.{name} must have shape ({n}, {t}, {len(KINDS)}); got "
                                      f"{getattr(self, name).shape}.")

    @property
    def n_prompts(self) -> int:
        return len(self.prompt_ids)

    def coverage(self) -> dict[str, float]:
        """Share of initial cells recorded, and of repair cells recorded among initial answers that failed
        the default checks (the repairs a default policy can ask for)."""
        initial = self.present[:, :, 0]
        failed = initial & ~self._default_ok(0)
        repair = self.present[:, :, 1] & failed
        return {"initial": float(initial.mean()) if initial.size else math.nan,
                "repair": float(repair.sum() / failed.sum()) if failed.sum() else 1.0,
                "quality": float(np.isfinite(self.quality[self.present]).mean()) if self.present.any() else math.nan}

    def _default_ok(self, kind: int) -> np.ndarray:
        json_fail = (self.task[:, None] == 1) & (self.json_ok[:, :, kind] != 1)
        return ~self.error[:, :, kind] & ~json_fail & (self.length[:, :, kind] >= 1) & ~self.refusal[:, :, kind]

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``replay.npz`` (arrays and a JSON header) into ``directory``."""
        path = Path(directory) / _ARRAYS
        header = {"ladder": list(self.ladder), "prompt_ids": list(self.prompt_ids), "strata": list(self.strata),
                  "source": self.source, "notes": self.notes, "meta": self.meta}
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, header=np.array(json.dumps(header)), **arrays)
        os.replace(tmp, path)
        return path


def load_replay(path: str | os.PathLike[str]) -> ReplayData:
    """Read a replay data set: a ``replay.npz``, a folder holding one, or a folder with ``replay.jsonl``
    rows (a collection, finished or not)."""
    path = Path(path)
    if path.is_dir() and (path / _ARRAYS).exists():
        path = path / _ARRAYS
    elif path.is_dir() and (path / _ROWS).exists():
        return from_rows(_read_rows(path / _ROWS), source=str(path))
    if not path.is_file():
        raise RunError(f"{path}: no replay data here; collect it with `tsglab frontier collect SPEC --out DIR` "
                       "(or pass the folder that holds replay.npz or replay.jsonl).")
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        arrays = {name: data[name] for name in data.files if name != "header"}
    return ReplayData(ladder=tuple(header["ladder"]), prompt_ids=tuple(header["prompt_ids"]),
                      strata=tuple(header.get("strata", ())), source=header.get("source", ""),
                      notes=header.get("notes", ""), meta=header.get("meta", {}), **arrays)


def features_of(item: SuiteItem) -> tuple[int, int, bool, int]:
    """The planner features a routing kernel needs: chars, marks, heavy, task code (:data:`TASKS`)."""
    report = plan(item.prompt, _DEFAULT_CHECKS, json_schema=item.json_schema)
    return report.chars, int(report.marks or 0), bool(report.heavy), TASKS.index(report.task)


# ------------------------------------------------------------------------------------------- collect


def _row(item: SuiteItem, tier: str, kind: str, text: str, completion: Any, error: str, elapsed_ms: float,
         task: str) -> dict[str, Any]:
    verdict = check_answer(text, task=task, json_schema=item.json_schema, config=_DEFAULT_CHECKS)
    quality = 0.0 if error else score_answer(item, text).score
    json_ok = -1 if task != "json" else int(bool(verdict.json_ok))
    if completion is None:
        cost, latency, tokens = elapsed_ms, elapsed_ms, 0
    else:
        cost = completion.prompt_eval_ms + completion.eval_ms
        latency, tokens = completion.total_ms, completion.completion_tokens
    return {"prompt_id": item.id, "tier": tier, "kind": kind, "error": error, "json_ok": json_ok,
            "length": len(text.strip()), "refusal": is_refusal(text), "quality": quality, "cost_ms": cost,
            "latency_ms": latency, "tokens": tokens, "ok": verdict.ok and not error,
            "detail": verdict.detail or verdict.reason, "text": text}


def collect(items: Sequence[SuiteItem], ladder: TierLadder, out: str | os.PathLike[str], *, timeout_s: float | None,
            seed: int = 0, progress: Callable[[int, int], None] | None = None) -> ReplayData:
    """Answer every item on every tier of ``ladder`` (initial; repair when the initial answer fails the default
    checks), append the rows to ``out/replay.jsonl`` (rows already there are kept and not asked again), and
    return the data set (also written as ``out/replay.npz``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / _ROWS
    _cut_torn_tail(rows_path)
    done = {(r["prompt_id"], r["tier"], r["kind"]): r for r in _read_rows(rows_path)} if rows_path.exists() else {}
    total, count = len(items) * len(ladder.tiers), 0
    with open(rows_path, "a", encoding="utf-8") as sink:
        for item in items:
            task = TASKS[features_of(item)[3]]
            for tier in ladder.tiers:
                count += 1
                initial = done.get((item.id, tier, "initial"))
                if initial is not None and ((item.id, tier, "repair") in done or initial["ok"] or initial["error"]):
                    continue
                first = _attempt(ladder, item, tier, "initial", task, None, timeout_s, seed)
                rows = [first]
                if not first["ok"] and not first["error"]:
                    rows.append(_attempt(ladder, item, tier, "repair", task, (first["text"], first["detail"]),
                                         timeout_s, seed))
                sink.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
                sink.flush()
                if progress is not None:
                    progress(count, total)
    data = from_rows(_read_rows(rows_path), source=str(out), items=items, ladder=ladder.tiers)
    data.save(out)
    return data


def _attempt(ladder: TierLadder, item: SuiteItem, tier: str, kind: str, task: str, repair_of: tuple[str, str] | None,
             timeout_s: float | None, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        completion = ladder.generate(tier, item.prompt, task=task, json_schema=item.json_schema, timeout_s=timeout_s,
                                     repair_of=repair_of, seed=seed)
    except BackendError as exc:
        elapsed = getattr(exc, "elapsed_ms", (time.perf_counter() - started) * 1e3)
        return _row(item, tier, kind, "", None, exc.error_kind, elapsed, task)
    return _row(item, tier, kind, completion.text, completion, "", 0.0, task)


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line without its newline (a collection killed mid-write) so appending starts clean."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                if not line.endswith("\n"):  # a torn last line of an interrupted collection: ask again
                    break
                raise RunError(f"{path}:{number}: not a JSON row; delete that line and collect again.") from None
    return rows


def from_rows(rows: Iterable[dict[str, Any]], *, source: str = "", items: Sequence[SuiteItem] | None = None,
              ladder: Sequence[str] | None = None) -> ReplayData:
    """A data set from collected rows (``items`` give the planner features; without them the suite is
    loaded and matched by id)."""
    rows = list(rows)
    if ladder is None:
        ladder = list(dict.fromkeys(r["tier"] for r in rows))
    if items is None:
        from tsglab.suite import load_suite

        wanted = {r["prompt_id"] for r in rows}
        items = [i for i in load_suite() if i.id in wanted]
    ladder = tuple(ladder)
    index = {item.id: p for p, item in enumerate(items)}
    data = _empty(items, ladder)
    for row in rows:
        p = index.get(row["prompt_id"])
        if p is None or row["tier"] not in ladder:
            continue
        _fill(data, p, ladder.index(row["tier"]), KINDS.index(row["kind"]), row)
    return ReplayData(ladder=ladder, prompt_ids=tuple(i.id for i in items), source=source or "collect",
                      strata=tuple(str(i.strata.get("task", i.task)) for i in items), notes=__doc__.split("\n\n")[2],
                      **data)


def _empty(items: Sequence[SuiteItem], ladder: tuple[str, ...]) -> dict[str, Any]:
    n, shape = len(items), (len(items), len(ladder), len(KINDS))
    features = np.array([features_of(item) for item in items], dtype=np.int64).reshape(n, 4)
    return {"chars": features[:, 0].copy(), "marks": features[:, 1].copy(), "heavy": features[:, 2].astype(bool),
            "task": features[:, 3].astype(np.int8), "present": np.zeros(shape, bool), "error": np.zeros(shape, bool),
            "json_ok": np.full(shape, -1, np.int8), "length": np.zeros(shape, np.int64),
            "refusal": np.zeros(shape, bool), "quality": np.full(shape, np.nan), "cost_ms": np.zeros(shape),
            "latency_ms": np.zeros(shape), "tokens": np.zeros(shape, np.int64)}


def _fill(data: dict[str, np.ndarray], p: int, t: int, k: int, row: dict[str, Any]) -> None:
    data["present"][p, t, k] = True
    data["error"][p, t, k] = bool(row.get("error"))
    data["json_ok"][p, t, k] = int(row["json_ok"])
    data["length"][p, t, k] = int(row["length"])
    data["refusal"][p, t, k] = bool(row["refusal"])
    data["quality"][p, t, k] = float(row["quality"]) if row.get("quality") is not None else np.nan
    data["cost_ms"][p, t, k] = float(row["cost_ms"])
    data["latency_ms"][p, t, k] = float(row["latency_ms"])
    data["tokens"][p, t, k] = int(row["tokens"])


# ------------------------------------------------------------------------------------ logged gateway runs


def from_events(events: Iterable[Any], items: Sequence[SuiteItem], ladder: Sequence[str]) -> ReplayData:
    """Cells from logged gateway runs: each attempt of each event fills its (prompt, tier, kind) cell when its
    request is one the replay models (an initial or upgrade attempt → the tier's initial cell; the first repair
    → the repair cell of the tier it repaired). An attempt's check facts come from its ``check_ok`` and
    ``check_reason``; only the final attempt's quality is known (the event's), so other cells have NaN quality.
    Later events overwrite earlier ones only where they add a quality."""
    ladder = tuple(ladder)
    index = {item.id: p for p, item in enumerate(items)}
    data = _empty(items, ladder)
    for event in events:
        p = index.get(event.prompt_id)
        if p is None:
            continue
        task = TASKS[int(data["task"][p])]
        for position, attempt in enumerate(event.attempts):
            if attempt.tier not in ladder or attempt.kind not in ("initial", "upgrade", "repair"):
                continue
            k = 1 if attempt.kind == "repair" else 0
            t = ladder.index(attempt.tier)
            last = position == len(event.attempts) - 1
            quality = event.quality.score if last else None
            if data["present"][p, t, k] and (quality is None or np.isfinite(data["quality"][p, t, k])):
                continue
            reason = attempt.check_reason
            row = {"error": attempt.error_kind, "json_ok": -1 if task != "json" else int(reason != "json_contract"),
                   "length": 0 if reason == "too_short" else max(1, len(event.answer.strip()) if last else 1),
                   "refusal": reason == "refusal", "quality": quality, "cost_ms": attempt.cost_ms,
                   "latency_ms": attempt.total_ms, "tokens": attempt.completion_tokens}
            _fill(data, p, t, k, row)
    return ReplayData(ladder=ladder, prompt_ids=tuple(i.id for i in items), source="events",
                      strata=tuple(str(i.strata.get("task", i.task)) for i in items),
                      notes="from logged gateway runs: check facts from each attempt's check_reason; quality only for "
                            "final attempts; lengths of non-final answers unknown (recorded as passing the length "
                            "check unless the check said too_short)", **data)
