"""A session: what one segment of a run holds open — the tier ladder, the energy meter, the event writer
and the progress bar — opened in order and closed in reverse, also on errors and Ctrl-C."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

from tsglab.backends import build_backends, preflight
from tsglab.config import ExperimentSpec
from tsglab.config.secrets import redact_url
from tsglab.events.energy import EnergyRecording
from tsglab.events.log import GROUP_COMMIT_INTERVAL_S, EventWriter
from tsglab.load.rundir import RunDirectory
from tsglab.policy import TierLadder

__all__ = ["ProgressFactory", "Session", "build_ladder", "set_notebook_progress"]

#: makes the progress display of one segment: (run directory, planned requests, already done) → an object
#: with ``update(n)``, ``set_postfix_str(text, refresh=False)`` and ``close()`` (a tqdm bar qualifies);
#: ``close()`` runs while the segment's exception, if any, is being handled (``sys.exc_info()`` tells how it ended)
ProgressFactory = Callable[[RunDirectory, int, int], Any]

# what ``progress=True`` shows inside an IPython kernel; tsglab.jupyter registers its live monitor here
# because this layer may not import that one (DESIGN §2); without it a kernel gets tqdm's bar
_notebook_progress: ProgressFactory | None = None


def set_notebook_progress(factory: ProgressFactory | None) -> None:
    """Register the progress display a run shows by default inside an IPython kernel (None: tqdm's bar)."""
    global _notebook_progress
    _notebook_progress = factory


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (a notebook, papermill), False in a terminal, IPython's terminal or tests."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def _tqdm_bar(run_dir: RunDirectory, total: int, initial: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=run_dir.run_id, unit="req")


def default_progress() -> ProgressFactory:
    """The display ``progress=True`` means: the registered notebook monitor inside a kernel, else tqdm's bar."""
    if _notebook_progress is not None and _in_kernel():
        return _notebook_progress
    return _tqdm_bar


def build_ladder(spec: ExperimentSpec) -> TierLadder:
    """The spec's ladder with every tier's backend built and, unless ``spec.preflight`` is false, checked
    (server up, model served or installed, model file present): an unknown backend name or a failed
    check stops the run here, before anything is written or any request is scheduled."""
    backends = build_backends(spec.tiers)
    if spec.preflight:
        try:
            preflight(backends, {tier: redact_url(t.endpoint) for tier, t in spec.tiers.items()})
        except BaseException:
            for backend in backends.values():
                with contextlib.suppress(Exception):  # the pre-flight error is the one to report
                    backend.close()
            raise
    return TierLadder(spec.tiers, backends)


class Session(contextlib.AbstractContextManager):
    """Opens the ladder's models (``warm_up``), the energy meter, the event writer and a progress bar for
    one segment of ``run_dir``; ``close`` (or leaving the ``with`` block) releases them and finishes the
    energy recording — a failure there is recorded, never allowed to lose the run."""

    def __init__(self, spec: ExperimentSpec, run_dir: RunDirectory, ladder: TierLadder, *, own_ladder: bool,
                 energy_meter=None, progress: tuple[int, int] | None = None,
                 progress_factory: ProgressFactory | None = None) -> None:
        """``progress`` is (total, already done) for a progress display, or None for none;
        ``progress_factory`` makes it (default: :func:`default_progress`)."""
        self.spec, self.run_dir, self.ladder = spec, run_dir, ladder
        self._own_ladder = own_ladder
        self._energy_meter, self._progress = energy_meter, progress
        self._progress_factory = progress_factory
        self.writer: EventWriter | None = None
        self.energy: EnergyRecording | None = None
        self.bar: Any = None
        self.load_ms: dict[str, float] | None = None
        self.energy_summary: dict[str, Any] | None = None

    def __enter__(self) -> Session:
        try:
            # open loop: group commit keeps an fsync out of every event's path (the bound on a crash's loss:
            # tsglab.events.log)
            interval = GROUP_COMMIT_INTERVAL_S if self.spec.load.mode == "open_loop" else 0.0
            self.writer = EventWriter(self.run_dir.path, fsync_interval_s=interval)
            self.load_ms = self.ladder.warm_up()
            self.energy = EnergyRecording(self.spec.energy, self.run_dir.path, self.run_dir.segment,
                                          meter=self._energy_meter).start()
            if self._progress is not None:
                total, initial = self._progress
                self.bar = (self._progress_factory or default_progress())(self.run_dir, total, initial)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.writer is not None:
            self.writer.close()
        if self._own_ladder:
            self.ladder.close()
            self._own_ladder = False
        if self.energy is not None and self.energy_summary is None:
            self.energy_summary = _finish_energy(self.energy)


def _finish_energy(energy: EnergyRecording) -> dict[str, Any]:
    """Attach the measured energy to the segment's events; a failure there must not lose the run."""
    try:
        return energy.finish()
    except Exception as exc:  # noqa: BLE001 (the events stay as written, "pending"; the samples CSV stays for later)
        return {"available": False, "reason": f"apportioning failed ({type(exc).__name__}: {exc}); samples kept "
                                              f"in energy_samples-{energy.segment}.csv"}
