"""The run directory: its manifest (``run.json``), resuming, and one segment per start.

A run directory holds one experiment's append-only ``events.jsonl`` and its ``run.json``. Every start
of the runner — the first, and each ``--resume`` — is a *segment*: it appends a segment record to the
manifest, marks the run ``running`` (with the pid) while it goes, and ``complete`` or ``incomplete``
when it stops. Resuming checks that the spec is unchanged (its hash), that no other process runs the
same directory, and skips every (arm, prompt) already recorded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsglab._version import __version__
from tsglab.config import ExperimentSpec
from tsglab.errors import RunError, SpecError
from tsglab.events import EVENTS_FILE, read_events, read_manifest, write_manifest

__all__ = ["RunDirectory", "now_iso"]


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@dataclass
class RunDirectory:
    """One run directory during one segment: where it is, its manifest, and what is already done."""

    path: Path
    run_id: str
    segment: int
    manifest: dict[str, Any]
    done: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (arm, prompt id) recorded

    @classmethod
    def create(cls, spec: ExperimentSpec, *, runs_dir: str | os.PathLike, run_id: str | None, suite_path: Path,
               n_planned: int) -> RunDirectory:
        """A new run directory ``runs_dir/run_id`` (refused when it already holds events)."""
        run_id = run_id or f"{spec.name}-{dt.datetime.now().astimezone():%Y%m%d-%H%M%S}"
        path = Path(runs_dir) / run_id
        if (path / EVENTS_FILE).exists():
            raise RunError(f"{path} already holds events; pass resume={str(path)!r} (CLI: --resume) "
                           "to continue it, or choose another run id.")
        manifest = {
            "run_id": run_id,
            "spec_name": spec.name,
            "spec_hash": spec.spec_hash(),
            "spec": spec.to_dict(),
            "suite": str(suite_path),
            "suite_sha256": _file_sha(suite_path),
            "arms": list(spec.arms),
            "ladder": list(spec.ladder),
            "n_planned": n_planned,
            "tsglab_version": __version__,
            "seed": spec.seed,
            "created": now_iso(),
            "segments": [],
        }
        return cls(path, run_id, 0, manifest)

    @classmethod
    def resume(cls, spec: ExperimentSpec, path: str | os.PathLike) -> RunDirectory:
        """The run directory ``path``, to continue with the same spec where it stopped."""
        path = Path(path)
        manifest = read_manifest(path)
        if manifest.get("spec_hash") != spec.spec_hash():
            raise SpecError(f"{path}: the spec changed since this run started (hash {manifest.get('spec_hash')} "
                            f"→ {spec.spec_hash()}); start a new run instead of resuming.")
        if manifest.get("status") == "running":
            raise RunError(f"{path}: run is still in progress (pid {manifest.get('pid')}).")
        events = read_events(path)
        done = frozenset((e.arm, e.prompt_id) for e in events)
        segment = max((e.segment for e in events), default=-1) + 1
        return cls(path, manifest["run_id"], segment, manifest, done)

    def start_segment(self, n_remaining: int) -> None:
        """Mark the run ``running`` and append this segment's record; written before any request is sent."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.manifest.update(status="running", pid=os.getpid())
        self.manifest["segments"] = [*self.manifest.get("segments", []),
                                     {"segment": self.segment, "started": now_iso(), "n_remaining": n_remaining}]
        write_manifest(self.path, self.manifest)

    def finish_segment(self, status: str, **figures: Any) -> None:
        """Record how the segment ended; ``figures`` (``energy``, ``load_generator``, ``load_ms``, ...) go to
        both the run and the segment record (the run-level value is the last segment's)."""
        for key, value in figures.items():
            if value is None:
                continue
            self.manifest[key] = value
            self.manifest["segments"][-1][key] = value
        self.manifest.update(status=status, pid=None, finished=now_iso())
        write_manifest(self.path, self.manifest)
