"""Experiment specs: YAML files (or papermill parameters) turned into one frozen value.

A spec names the request suite, the arms (policy parameter sets), the tier ladder and the load
pattern. Every error names the file and the key, with the fix.

The ladder is the ``tiers:`` mapping in the order written, lowest rung first, with any names and at
least one rung. Which backends exist is not known here (this package sits below
:mod:`tsglab.backends`, whose registry a user's package can extend), so a tier's ``backend`` name is
checked when the backend is built (:func:`tsglab.backends.build_backend`), not when the spec is read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsglab.config._fields import check_fields, check_value, describe
from tsglab.config.guard import GuardConfig, check_claims
from tsglab.config.names import check_name
from tsglab.config.policy import DEFAULT_TIERS, PolicyConfig
from tsglab.config.secrets import REDACTED, redact_options, redact_url
from tsglab.config.yaml_loader import load_yaml
from tsglab.errors import SpecError

__all__ = [
    "ARRIVALS",
    "REDACTED",
    "RETRYABLE_KINDS",
    "EnergySpec",
    "ExperimentSpec",
    "LoadSpec",
    "PromptSelection",
    "RetryPolicy",
    "TierSpec",
    "apply_overrides",
    "load_spec",
    "spec_from_dict",
]

_TOP_KEYS = {"name", "description", "suite", "prompts", "arms", "tiers", "load", "retry", "energy", "seed",
             "on_error", "preflight", "claims"}
ON_ERROR = ("record", "stop")
ARRIVALS = ("constant", "poisson", "gamma")
RETRYABLE_KINDS = ("connect_error", "http_5xx", "http_429", "stream_interrupted", "malformed_response")


@dataclass(frozen=True)
class TierSpec:
    """One rung of the ladder.

    ``backend`` names an entry of the backend registry (:func:`tsglab.backends.backend_names`):
    built in are ``embedded`` (llama.cpp in-process), ``ollama``, ``openai`` (any OpenAI-compatible
    server) and ``scripted`` (answers written in ``options``, no model). ``endpoint``: the server's URL
    (Ollama host, or the OpenAI base URL such as ``http://127.0.0.1:8000/v1``); empty means the
    environment (``OLLAMA_HOST``, ``OPENAI_BASE_URL``). ``api_key_env`` names the environment variable
    holding the key (default ``OPENAI_API_KEY``); an ``api_key`` written in the spec is used but never
    stored in events, manifests or logs. ``constrained_json`` decodes json tasks under their JSON Schema
    (grammar-constrained sampling); ``system_prompt`` is sent as a system message when non-empty.
    ``options`` go to the backend (e.g. Ollama's ``num_ctx``, ``keep_alive``; the embedded backend's
    ``n_threads``; the scripted backend's ``reply``).
    """

    name: str
    backend: str = "embedded"
    model: str = "smollm2-135m"
    endpoint: str = ""
    api_key_env: str = ""
    api_key: str = field(default="", repr=False)
    max_tokens: int = 128
    constrained_json: bool = False
    system_prompt: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, values: dict[str, Any], where: str = "spec") -> TierSpec:
        known = {f.name for f in dataclasses.fields(cls)} - {"name"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpecError(f"{where}: tiers.{name}: unknown key(s) {unknown}; known: {sorted(known)}.")
        if "backend" in values and values["backend"] == "":
            raise SpecError(f"{where}: tiers.{name}.backend must name a backend (e.g. 'embedded', 'ollama', "
                            "'openai', 'scripted'); got ''.")
        try:
            check_fields(cls, values, f"tiers.{name}")
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None
        spec = cls(name=name, **values)
        if not isinstance(spec.backend, str) or not spec.backend:
            raise SpecError(f"{where}: tiers.{name}.backend must name a backend (e.g. 'embedded', 'ollama', "
                            f"'openai', 'scripted'); got {spec.backend!r}.")
        if not isinstance(spec.options, dict):
            raise SpecError(f"{where}: tiers.{name}.options must be a mapping; got {type(spec.options).__name__}.")
        if spec.max_tokens < 1:
            raise SpecError(f"{where}: tiers.{name}.max_tokens must be >= 1; got {spec.max_tokens}.")
        return spec


@dataclass(frozen=True)
class PromptSelection:
    """Which suite items run: ``limit`` items drawn round-robin across tasks after a seeded shuffle."""

    limit: int | None = None
    tasks: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        _check_own_fields(self, "prompts")
        if self.limit is not None and self.limit < 1:
            raise SpecError(f"prompts.limit must be >= 1 (or null for every item); got {self.limit}.")


@dataclass(frozen=True)
class LoadSpec:
    """Arrival pattern.

    ``paced``: one request every ``period_ms`` (0 = back-to-back), sequential.
    ``open_loop``: arrivals at ``rate_per_s`` regardless of completions, at most ``concurrency`` in
    flight. ``arrival`` shapes the gaps: ``constant``, ``poisson`` (exponential gaps) or ``gamma``
    (bursty: gaps with coefficient of variation ``burstiness`` > 1; ``burstiness`` = 1 is Poisson).
    ``ramp_seconds`` raises the rate linearly from ``ramp_start_fraction`` × rate to the full rate.
    ``warmup_count`` counts requests per arm; ``warmup_seconds`` from the start of each segment.
    ``processes`` (open loop only) deals the schedule round-robin to that many forked sender processes
    sharing ``concurrency``: one Python process tops out at a few hundred to about a thousand requests per
    second (``benchmarks/bench_load.py``); not for in-process (embedded) models.
    """

    mode: str = "paced"
    period_ms: float = 0.0
    rate_per_s: float = 1.0
    arrival: str = "constant"
    burstiness: float = 2.0
    ramp_seconds: float = 0.0
    ramp_start_fraction: float = 0.1
    concurrency: int = 1
    arm_order: str = "interleaved"
    switchback_block: int = 10
    warmup_count: int = 0
    warmup_seconds: float = 0.0
    timeout_s: float = 60.0
    seed: int = 0
    processes: int = 1

    def __post_init__(self) -> None:
        _check_own_fields(self, "load", choices=("mode", "arrival", "arm_order"))
        for key, most in _LOAD_MAXIMA.items():
            if getattr(self, key) > most:
                raise SpecError(f"load.{key} must be <= {most:g}; got {getattr(self, key):g}. {_LOAD_MAXIMA_WHY[key]}")
        if self.mode not in ("paced", "open_loop"):
            raise SpecError(f"load.mode must be 'paced' or 'open_loop'; got {self.mode!r}.")
        if self.arrival not in ARRIVALS:
            raise SpecError(f"load.arrival must be one of {list(ARRIVALS)}; got {self.arrival!r}.")
        if self.arm_order not in ("interleaved", "switchback"):
            raise SpecError(f"load.arm_order must be 'interleaved' or 'switchback'; got {self.arm_order!r}.")
        if self.period_ms < 0:
            raise SpecError(f"load.period_ms must be >= 0; got {self.period_ms}.")
        if self.processes < 1:
            raise SpecError(f"load.processes must be >= 1; got {self.processes}. Use 1 for one sender process.")
        if self.processes > 1 and self.mode != "open_loop":
            raise SpecError(f"load.processes is {self.processes}, but only an open_loop run has several senders; "
                            "set load.mode: open_loop or remove load.processes.")
        if self.rate_per_s <= 0:
            raise SpecError(f"load.rate_per_s must be > 0; got {self.rate_per_s}.")
        if self.burstiness <= 0:
            raise SpecError(f"load.burstiness (coefficient of variation of the gaps) must be > 0; got "
                            f"{self.burstiness}.")
        if self.ramp_seconds < 0 or not 0 < self.ramp_start_fraction <= 1:
            raise SpecError("load.ramp_seconds must be >= 0 and load.ramp_start_fraction in (0, 1]; got "
                            f"{self.ramp_seconds}, {self.ramp_start_fraction}.")
        if self.concurrency < 1:
            raise SpecError(f"load.concurrency must be >= 1; got {self.concurrency}.")
        if self.switchback_block < 1:
            raise SpecError(f"load.switchback_block must be >= 1; got {self.switchback_block}.")
        if self.timeout_s <= 0:
            raise SpecError(f"load.timeout_s must be > 0; got {self.timeout_s}.")
        if self.warmup_count < 0 or self.warmup_seconds < 0:
            raise SpecError("load.warmup_count and load.warmup_seconds must be >= 0.")


# Beyond these the runner's clocks and sleeps overflow or the run cannot end; far above any real setting.
_LOAD_MAXIMA = {"timeout_s": 86_400, "period_ms": 86_400_000, "rate_per_s": 1_000_000, "ramp_seconds": 86_400,
                "warmup_seconds": 86_400, "concurrency": 100_000, "burstiness": 1_000, "processes": 256}
_LOAD_MAXIMA_WHY = {
    "timeout_s": "A timeout longer than a day never ends a request; use a realistic deadline.",
    "period_ms": "One request a day is not a load test; use a shorter period.",
    "rate_per_s": "No client sustains that rate; see benchmarks/bench_load.py for this machine's ceiling.",
    "ramp_seconds": "Use a ramp shorter than a day.",
    "warmup_seconds": "Use a warm-up shorter than a day.",
    "concurrency": "Each request in flight needs a connection; use fewer.",
    "burstiness": "Gaps that irregular are all but one burst; use a coefficient of variation <= 1000.",
    "processes": "More sender processes than that only contend for the cores; use about one per core.",
}


def _check_own_fields(instance: Any, prefix: str, choices: tuple[str, ...] = ()) -> None:
    """Strict field types of a frozen config section (lists of names become tuples)."""
    values = {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)}
    check_fields(type(instance), values, prefix, choices=choices)
    for key, value in values.items():
        if isinstance(value, list):
            object.__setattr__(instance, key, tuple(value))


@dataclass(frozen=True)
class RetryPolicy:
    """What the executor does when a backend call fails (not when it times out: a timeout is a
    right-censored observation and is never retried). ``max_retries`` extra attempts at the same
    tier, only for the error kinds in ``on``, after ``backoff_ms`` × 2^k. Default: no retries."""

    max_retries: int = 0
    on: tuple[str, ...] = ("connect_error", "http_5xx", "http_429")
    backoff_ms: float = 200.0

    def __post_init__(self) -> None:
        _check_own_fields(self, "retry")
        if self.max_retries > 20:
            raise SpecError(f"retry.max_retries must be <= 20; got {self.max_retries}. Retries back off "
                            "exponentially: 20 already waits about 2^20 x backoff_ms.")
        if self.backoff_ms > 600_000:
            raise SpecError(f"retry.backoff_ms must be <= 600000 (10 minutes); got {self.backoff_ms:g}.")
        if self.max_retries < 0:
            raise SpecError(f"retry.max_retries must be >= 0; got {self.max_retries}.")
        if self.backoff_ms < 0:
            raise SpecError(f"retry.backoff_ms must be >= 0; got {self.backoff_ms}.")
        unknown = sorted(set(self.on) - set(RETRYABLE_KINDS))
        if unknown:
            raise SpecError(f"retry.on: {unknown} are not retryable error kinds; choose from "
                            f"{list(RETRYABLE_KINDS)} (timeouts are never retried).")


@dataclass(frozen=True)
class EnergySpec:
    """The energy meter. ``meter``: ``auto`` (NVML if a GPU answers, else RAPL if readable, else
    none), ``nvml``, ``rapl`` or ``none``. ``idle_w`` is the idle baseline in watts subtracted before
    apportioning (None: measured for ``idle_seconds`` before the run starts)."""

    meter: str = "auto"
    sample_hz: float = 20.0
    window_s: float = 1.0
    idle_w: float | None = None
    idle_seconds: float = 2.0
    gpu_index: int = 0

    def __post_init__(self) -> None:
        _check_own_fields(self, "energy", choices=("meter",))
        if self.gpu_index < 0:
            raise SpecError(f"energy.gpu_index must be >= 0 (0 is the first GPU); got {self.gpu_index}.")
        if self.idle_seconds < 0:
            raise SpecError(f"energy.idle_seconds must be >= 0; got {self.idle_seconds:g}.")
        if self.meter not in ("auto", "nvml", "rapl", "none"):
            raise SpecError(f"energy.meter must be auto, nvml, rapl or none; got {self.meter!r}.")
        if self.sample_hz < 10:
            raise SpecError(f"energy.sample_hz must be >= 10 (windows need several samples); got {self.sample_hz}.")
        if self.window_s < 1:
            raise SpecError(f"energy.window_s must be >= 1 s (NVML's counter is too coarse below); got "
                            f"{self.window_s}.")
        if self.idle_w is not None and self.idle_w < 0:
            raise SpecError(f"energy.idle_w must be >= 0 watts; got {self.idle_w}.")


@dataclass(frozen=True)
class ExperimentSpec:
    """One experiment. ``tiers`` is the ladder in order, lowest rung first (:attr:`ladder`); every arm's
    tier-valued parameters must name rungs of it (checked here, naming the arm, field and value)."""

    name: str
    suite: str  # "bundled" or a path
    arms: dict[str, PolicyConfig]
    tiers: dict[str, TierSpec]
    prompts: PromptSelection = PromptSelection()
    load: LoadSpec = LoadSpec()
    retry: RetryPolicy = RetryPolicy()
    energy: EnergySpec = EnergySpec()
    seed: int = 0
    description: str = ""
    #: what an exception while handling a request does (a bug in a backend, a check or the scorer; backend
    #: failures such as timeouts or HTTP errors are recorded by the executor, never exceptions): ``record``
    #: it as that request's error event and go on, or ``stop`` the run (incomplete, resumable). The same
    #: rule in paced and open-loop mode.
    on_error: str = "record"
    #: check every tier's server (model served or installed, model file present) before the schedule
    #: starts; ``false`` skips it (CLI: ``tsglab run --no-preflight``)
    preflight: bool = True
    #: published claims the report checks against the measured figures (:data:`tsglab.config.guard.CLAIM_NAMES`)
    claims: dict[str, Any] = field(default_factory=dict)
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        where = self.source or "<spec>"
        if not isinstance(self.preflight, bool):
            raise SpecError(f"{where}: preflight must be true or false; got {self.preflight!r}. Write "
                            "`preflight: false` to skip the check of the servers before the run.")
        check_name(self.name, key="name", where=where)  # it becomes a directory name (run ids)
        if self.on_error not in ON_ERROR:
            raise SpecError(f"{where}: on_error must be one of {list(ON_ERROR)}; got {self.on_error!r}. 'record' "
                            "turns an exception while handling a request into its error event; 'stop' ends the run.")
        if not self.tiers:
            raise SpecError(f"{where}: tiers: the ladder needs at least one rung; list them lowest first, e.g. "
                            "tiers: {light: {...}, std: {...}, enh: {...}}.")
        for key, tier in self.tiers.items():
            if not isinstance(tier, TierSpec) or tier.name != key:
                got = tier.name if isinstance(tier, TierSpec) else type(tier).__name__
                raise SpecError(f"{where}: tiers.{key} must be a TierSpec named {key!r}; got {got!r}.")
        # Before ladders were configurable the order of `tiers:` did not matter; a spec that still lists
        # the default names in another order would now silently turn its ladder upside down.
        default_names = [t for t in self.ladder if t in DEFAULT_TIERS]
        if default_names != [t for t in DEFAULT_TIERS if t in default_names]:
            raise SpecError(f"{where}: tiers are listed as {list(self.ladder)}, but the ladder is read lowest rung "
                            f"first and {default_names} are out of their usual order {list(DEFAULT_TIERS)}; "
                            "reorder `tiers:` lowest first (or rename the rungs if the order is intended).")
        for arm, config in self.arms.items():
            try:
                config.check_ladder(self.ladder, arm=arm)
            except SpecError as exc:
                raise SpecError(f"{where}: {exc}") from None

    @property
    def ladder(self) -> tuple[str, ...]:
        """The tier names, lowest rung first (the order of ``tiers:`` in the spec)."""
        return tuple(self.tiers)

    def to_dict(self) -> dict[str, Any]:
        """Everything that defines the experiment, with secrets redacted (this goes into run.json): API
        keys, user info and credential query values of endpoints, credential-like option values
        (:mod:`tsglab.config.secrets`)."""
        data = dataclasses.asdict(self)
        data.pop("source")
        for tier in data["tiers"].values():
            if tier.get("api_key"):
                tier["api_key"] = REDACTED
            tier["endpoint"] = redact_url(tier["endpoint"])
            tier["options"] = redact_options(tier["options"])
        return data

    def spec_hash(self) -> str:
        payload = self.to_dict()
        # sort_keys below forgets the order of `tiers:`, which is the ladder's order; hash it explicitly
        # when it is not the default ladder (only then, so every default-ladder spec keeps its hash and
        # runs started before ladders were configurable can still be resumed).
        if self.ladder != DEFAULT_TIERS:
            payload["ladder"] = list(self.ladder)
        if self.on_error == "record":  # the default: left out so hashes of specs written before it stay
            payload.pop("on_error")
        payload.pop("preflight")  # a check before the run, not part of what the run measures
        payload.pop("claims")  # what the report checks the figures against, not what the run measures
        for arm, config in self.arms.items():  # arms without guardians keep the hashes they had before them
            if config.guard == GuardConfig():
                payload["arms"][arm].pop("guard")
        # how many processes send the schedule changes no request: left out, so a run resumes with another count
        payload["load"].pop("processes")
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _section(raw: dict, key: str, where: str) -> dict:
    value = raw.get(key)
    if value is None:  # absent, or written with every entry commented out: the defaults
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{where}: '{key}' must be a mapping of settings; got {describe(value)}. Write "
                        f"{key}: {{setting: value, ...}}, or remove '{key}' for the defaults.")
    return value


def _as_tuple(value: Any) -> Any:
    """A YAML list becomes a tuple; anything else is left for the strict type check to name."""
    return tuple(value) if isinstance(value, list) else value


def _build(cls, values: dict, where: str, prefix: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {[f'{prefix}.{k}' for k in unknown]}; known: {sorted(known)}.")
    try:
        return cls(**values)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise SpecError(f"{where}: {prefix}: {exc}") from None


def _tiers(raw: dict, where: str) -> dict[str, TierSpec]:
    if "tiers" not in raw:
        raise SpecError(f"{where}: missing key 'tiers' (the ladder, lowest rung first), e.g. "
                        "tiers: {light: {max_tokens: 64}, std: {max_tokens: 128}, enh: {max_tokens: 256}}.")
    tiers_raw = _section(raw, "tiers", where)
    if not tiers_raw:
        raise SpecError(f"{where}: tiers: the ladder needs at least one rung; list them lowest first, e.g. "
                        "tiers: {light: {...}, std: {...}, enh: {...}}.")
    tiers: dict[str, TierSpec] = {}
    for key, values in tiers_raw.items():
        name = str(key)
        if values is not None and not isinstance(values, Mapping):
            raise SpecError(f"{where}: tiers.{name} must be a mapping of tier settings; got {type(values).__name__}.")
        tiers[name] = TierSpec.from_dict(name, dict(values or {}), where)
    return tiers


def spec_from_dict(raw: dict[str, Any], *, where: str = "<spec>", base_dir: Path | None = None) -> ExperimentSpec:
    """Validate a spec mapping (as parsed from YAML) into an :class:`ExperimentSpec`."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a spec must be a mapping of keys; got {type(raw).__name__}.")
    unknown = sorted(map(str, set(raw) - _TOP_KEYS))
    if unknown:
        raise SpecError(f"{where}: unknown top-level key(s) {unknown}; known: {sorted(_TOP_KEYS)}.")
    if "name" not in raw:
        raise SpecError(f"{where}: missing key 'name' (used in run ids).")
    check_name(raw["name"], key="name", where=where)  # before str(): a YAML date or number is refused, not renamed
    try:
        for key, expected in (("name", str), ("suite", str), ("description", str), ("seed", int)):
            if key in raw:
                check_value(raw[key], expected, key)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    suite = raw.get("suite", "bundled")
    if not suite.strip():
        raise SpecError(f"{where}: suite is empty; write suite: bundled for the bundled suite, or the path of a "
                        "JSONL suite file.")
    if suite != "bundled" and base_dir is not None and not Path(suite).is_absolute():
        candidate = base_dir / suite
        suite = str(candidate if candidate.exists() else Path(suite))
    if "arms" in raw:
        arms_raw = _section(raw, "arms", where)
        if not arms_raw:  # `arms: {}` used to be replaced by the default arms without a word
            raise SpecError(f"{where}: arms is empty; list at least one arm, e.g. arms: {{baseline: {{kind: "
                            "baseline}, tsg: {}}, or remove the key for those two default arms.")
    else:
        arms_raw = _default_arms()
    arms = {}
    for arm, values in arms_raw.items():
        if values is not None and not isinstance(values, dict):
            raise SpecError(f"{where}: arms.{arm} must be a mapping of policy parameters; got {describe(values)}. "
                            f"Write arms: {{{arm}: {{thr_std: 0.4}}}} ({{}} for the paper's defaults).")
        try:
            arms[str(arm)] = PolicyConfig.from_dict({"label": str(arm), **(values or {})})
        except SpecError as exc:
            raise SpecError(f"{where}: arms.{arm}: {exc}") from None
    tiers = _tiers(raw, where)
    prompts_raw = dict(_section(raw, "prompts", where))
    for key in ("tasks", "ids"):
        if key in prompts_raw:
            prompts_raw[key] = _as_tuple(prompts_raw[key])
    prompts = _build(PromptSelection, prompts_raw, where, "prompts")
    load = _build(LoadSpec, dict(_section(raw, "load", where)), where, "load")
    retry_raw = dict(_section(raw, "retry", where))
    if "on" in retry_raw:
        retry_raw["on"] = _as_tuple(retry_raw["on"])
    retry = _build(RetryPolicy, retry_raw, where, "retry")
    energy = _build(EnergySpec, dict(_section(raw, "energy", where)), where, "energy")
    return ExperimentSpec(name=str(raw["name"]), suite=suite, arms=arms, tiers=tiers, prompts=prompts, load=load,
                          retry=retry, energy=energy, seed=raw.get("seed", 0),
                          description=raw.get("description", ""), on_error=raw.get("on_error", "record"),
                          preflight=raw.get("preflight", True),
                          claims=check_claims(raw.get("claims"), where=f"{where}: claims"),
                          source=where)


def load_spec(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> ExperimentSpec:
    """Read a YAML spec; ``overrides`` are dotted keys (``{"prompts.limit": 20}``) applied on top.

    The YAML is read strictly (:mod:`tsglab.config.yaml_loader`: no duplicate keys, no dates, YAML 1.2
    booleans and numbers, bounded nesting). An error caused by an override says so.
    Backend names are not checked here (see the module docstring): the runner builds every tier's
    backend before it sends a request, and an unknown name stops it there with the known names.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"spec file {path} does not exist; specs live in experiments/ "
                        "(e.g. experiments/quickstart.yaml).")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: the file is not valid UTF-8 (byte {exc.start}); save it as UTF-8.") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec ({exc.strerror or exc}); check the path and its "
                        "permissions.") from None
    raw = load_yaml(text, str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec must be a mapping of keys (name: ..., tiers: ...); got {describe(raw)}.")
    overrides = dict(overrides or {})
    raw = apply_overrides(raw, overrides, where=str(path))
    try:
        return spec_from_dict(raw, where=str(path), base_dir=path.parent)
    except SpecError as exc:
        raise _blame_override(exc, overrides) from None


def _blame_override(exc: SpecError, overrides: dict[str, Any]) -> SpecError:
    """The same error, saying which override set the value it names (the spec file never held it)."""
    message = str(exc)
    for dotted in sorted(overrides, key=len, reverse=True):
        if re.search(rf"(?<![\w.]){re.escape(dotted)}(?![\w])", message):
            value = overrides[dotted]
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
            return SpecError(f"{message.rstrip()} (the value comes from the override {dotted}={shown})")
    return exc


def _default_arms() -> dict[str, dict[str, Any]]:
    """The arms of a spec without ``arms``: the baseline and the TSG gateway with the paper's parameters."""
    return {"baseline": {"kind": "baseline"}, "tsg": {}}


def apply_overrides(raw: dict, overrides: dict[str, Any], *, where: str) -> dict:
    """A deep copy of ``raw`` with dotted keys (``{"load.period_ms": 25}``) set; mapping order is kept."""
    try:
        result = json.loads(json.dumps(raw, allow_nan=True))
    except (TypeError, ValueError) as exc:  # a date, bytes or a recursive value from a non-strict reader
        raise SpecError(f"{where}: the spec holds a value that is not plain data ({exc}); write strings, numbers, "
                        "booleans, lists and mappings only (quote dates).") from None
    if not isinstance(overrides, Mapping):
        raise SpecError(f"{where}: overrides must be a mapping of dotted keys to values, e.g. "
                        f"{{'prompts.limit': 20}}; got {describe(overrides)}.")
    for dotted, value in overrides.items():
        if not isinstance(dotted, str):
            raise SpecError(f"{where}: override key {dotted!r} must be a dotted string such as 'prompts.limit'.")
        keys = dotted.split(".")
        if not all(key.strip() for key in keys):
            raise SpecError(f"{where}: override {dotted!r} has an empty part between dots; write the dotted key "
                            "such as 'prompts.limit' or 'tiers.light.max_tokens'.")
        if keys[0] == "arms" and len(keys) > 1 and "arms" not in result:
            # `--set arms.tsg.thr_std=0.4` on a spec with the default arms tunes one of them; it must not
            # leave an arms section holding that one arm, which would drop the baseline without a word
            result["arms"] = _default_arms()
        node = result
        for depth, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise SpecError(f"{where}: override {dotted!r}: '{'.'.join(keys[:depth + 1])}' is not a mapping "
                                f"(it holds {describe(child)}); override it as a whole or fix the key.")
            node = child
        node[keys[-1]] = value
    return result
