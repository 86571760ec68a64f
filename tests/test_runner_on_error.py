"""One failure rule in both load modes: ``on_error: record`` (default) or ``stop``."""

from __future__ import annotations

import pytest

from tsglab.config import spec_from_dict
from tsglab.errors import SpecError
from tsglab.events import read_events, read_manifest
from tsglab.load.runner import run_experiment
from tsglab.policy import TierLadder


class Boom(RuntimeError):
    """A bug inside a backend: not a BackendError, so the executor does not expect it."""


def spec(mode: str, on_error: str | None = None):
    load = {"mode": mode, "timeout_s": 5, "rate_per_s": 200, "concurrency": 2}
    raw = {"name": "err", "prompts": {"limit": 6, "seed": 3}, "load": load, "energy": {"meter": "none"},
           "tiers": {t: {"backend": "scripted", "options": {"reply": "The answer is 42."}}
                     for t in ("light", "std", "enh")}}
    if on_error is not None:
        raw["on_error"] = on_error
    return spec_from_dict(raw)


def exploding_ladder(spec_, bad_prompt_ids):
    """The spec's scripted ladder, except that requests for ``bad_prompt_ids`` raise :class:`Boom`."""
    from tsglab.backends import build_backends

    backends = build_backends(spec_.tiers)
    prompts = set()

    class Exploding:
        def __init__(self, inner):
            self.inner, self.name = inner, inner.name

        def complete(self, request):
            if any(text in request.messages[-1].content for text in prompts):
                raise Boom("bug in a backend")
            return self.inner.complete(request)

        def warm_up(self):
            return 0.0

        def close(self):
            self.inner.close()

    from tsglab.load.schedule import select_prompts
    from tsglab.suite import load_suite

    items = select_prompts(load_suite(), spec_.prompts)
    chosen = [it for it in items if it.id in bad_prompt_ids] or items[:1]
    prompts.update(it.prompt for it in chosen)
    return TierLadder(spec_.tiers, {t: Exploding(b) for t, b in backends.items()}), {it.id for it in chosen}


@pytest.mark.parametrize("mode", ["paced", "open_loop"])
def test_record_turns_the_exception_into_that_requests_error_event_in_both_modes(tmp_path, mode):
    s = spec(mode)
    ladder, bad = exploding_ladder(s, set())
    result = run_experiment(s, runs_dir=tmp_path, run_id=mode, ladder=ladder, progress=False)
    assert result.status == "complete"
    assert result.n_events == result.n_planned == 12
    events = read_events(result.run_dir)
    failed = [e for e in events if e.error is not None]
    assert {e.prompt_id for e in failed} == bad
    assert len(failed) == 2  # one per arm
    assert all(e.error.kind == "runner_exception" and "Boom: bug in a backend" in e.error.message for e in failed)


@pytest.mark.parametrize("mode", ["paced", "open_loop"])
def test_stop_ends_the_run_with_the_exception_incomplete_and_resumable_in_both_modes(tmp_path, mode):
    s = spec(mode, on_error="stop")
    ladder, _ = exploding_ladder(s, set())
    with pytest.raises(Boom):
        run_experiment(s, runs_dir=tmp_path, run_id=mode, ladder=ladder, progress=False)
    run_dir = tmp_path / mode
    assert read_manifest(run_dir)["status"] == "incomplete"
    events = read_events(run_dir)
    assert all(e.error is None for e in events)  # nothing recorded for the request that raised
    assert len(events) < 12
    # the same spec with a healthy ladder finishes the run without repeating a request
    from tsglab.backends import build_backends

    result = run_experiment(s, resume=run_dir, ladder=TierLadder(s.tiers, build_backends(s.tiers)), progress=False)
    events = read_events(run_dir)
    assert result.status == "complete"
    assert len(events) == 12
    assert len({(e.arm, e.prompt_id) for e in events}) == 12


def test_on_error_is_checked_and_the_default_keeps_old_spec_hashes():
    with pytest.raises(SpecError, match="on_error must be one of"):
        spec("paced", on_error="ignore")
    assert spec("paced").on_error == "record"
    assert spec("paced").spec_hash() != spec("paced", on_error="stop").spec_hash()
