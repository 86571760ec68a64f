"""Sweep files: validation (each error one line naming the file, the key and the fix), expansion of
grid × zip × points × replicates, stable point ids, and keys that change with the run and only with it."""

from __future__ import annotations

import pytest
from _rundir_helpers import write_spec

from tsglab.errors import SpecError
from tsglab.sweep import load_sweep


@pytest.fixture
def base(tmp_path):
    return write_spec(tmp_path, name="base", limit=4)


def _sweep(tmp_path, body: str, name: str = "s"):
    path = tmp_path / f"{name}.sweep.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_grid_zip_and_replicates_expand_in_plan_order_with_stable_ids(tmp_path, base):
    path = _sweep(tmp_path, """
name: grid
base: base.yaml
grid:
  arms.tsg.thr_std: [0.3, 0.4]
  tiers.light.max_tokens: [32, 64]
zip:
  load.timeout_s: [5, 6]
  prompts.seed: [1, 2]
replicates: 2
""")
    sweep = load_sweep(path)
    assert len(sweep.points) == 2 * 2 * 2 * 2
    assert sweep.varied == ("arms.tsg.thr_std", "tiers.light.max_tokens", "load.timeout_s", "prompts.seed")
    first, second = sweep.points[0], sweep.points[1]
    assert (first.point_id, second.point_id) == ("p000-r0", "p000-r1")
    assert first.params == second.params == {"arms.tsg.thr_std": 0.3, "tiers.light.max_tokens": 32,
                                             "load.timeout_s": 5, "prompts.seed": 1}
    assert (first.seed, second.seed) == (0, 1)  # the spec's seed + replicate
    assert first.key != second.key  # another seed is another run
    # zip rows vary together and are crossed with the grid (the last grid key fastest)
    assert [p.params for p in sweep.points[::2]][:4] == [
        {"arms.tsg.thr_std": 0.3, "tiers.light.max_tokens": 32, "load.timeout_s": 5, "prompts.seed": 1},
        {"arms.tsg.thr_std": 0.3, "tiers.light.max_tokens": 32, "load.timeout_s": 6, "prompts.seed": 2},
        {"arms.tsg.thr_std": 0.3, "tiers.light.max_tokens": 64, "load.timeout_s": 5, "prompts.seed": 1},
        {"arms.tsg.thr_std": 0.3, "tiers.light.max_tokens": 64, "load.timeout_s": 6, "prompts.seed": 2}]
    spec = sweep.points[-1].spec
    assert spec["arms"]["tsg"]["thr_std"] == 0.4
    assert spec["tiers"]["light"]["max_tokens"] == 64
    assert spec["seed"] == 1
    assert len({p.dirname for p in sweep.points}) == len(sweep.points)
    again = load_sweep(path)
    assert [(p.point_id, p.key) for p in again.points] == [(p.point_id, p.key) for p in sweep.points]
    assert sweep.baseline_arm == "baseline"
    assert sweep.gateway_arm == "tsg"
    assert sweep.reference == "p000-r0"


def test_explicit_points_follow_the_grid_and_an_inline_spec_works(tmp_path, base):
    path = _sweep(tmp_path, f"""
spec:
{''.join('  ' + line + chr(10) for line in base.read_text().splitlines())}
grid: {{arms.tsg.thr_std: [0.3]}}
points:
  - {{arms.tsg.force_light_len: 0}}
  - {{}}
""")
    sweep = load_sweep(path)
    assert sweep.name == "s"  # the file's name without .sweep.yaml
    assert [p.point_id for p in sweep.points] == ["p000", "p001", "p002"]
    assert [p.params for p in sweep.points] == [{"arms.tsg.thr_std": 0.3}, {"arms.tsg.force_light_len": 0}, {}]
    assert sweep.varied == ("arms.tsg.thr_std", "arms.tsg.force_light_len")
    assert sweep.points[1].spec["arms"]["tsg"] == {"force_light_len": 0}


def test_the_key_follows_the_run_not_the_report_settings(tmp_path, base):
    path = _sweep(tmp_path, """
base: base.yaml
overrides: {report.n_resamples: 500}
points:
  - {}
  - {report.co_correction: false}
  - {arms.tsg.thr_std: 0.3}
  - {arms.tsg.thr_std: 0.40}
""")
    sweep = load_sweep(path)
    full, no_co, changed, written_default = sweep.points
    assert no_co.key == full.key  # C: the same run, analysed differently
    assert sweep.run_dirname(no_co) == full.dirname
    assert no_co.report == {"n_resamples": 500, "co_correction": False}
    assert full.report == {"n_resamples": 500}
    assert changed.key != full.key
    assert written_default.key == full.key  # writing the default value out changes nothing that runs
    # a changed value in the file gives the point another key, so a done run is never reused for it
    path.write_text(path.read_text().replace("thr_std: 0.3}", "thr_std: 0.35}"))
    assert load_sweep(path).points[2].key != changed.key
    assert load_sweep(path).points[0].key == full.key


def test_the_suite_content_is_in_the_key(tmp_path):
    from tsglab.suite import bundled_suite_path

    suite = tmp_path / "suite.jsonl"
    suite.write_bytes(bundled_suite_path().read_bytes())
    write_spec(tmp_path, name="base", limit=4, suite=suite)
    path = _sweep(tmp_path, "base: base.yaml\n")
    before = load_sweep(path).points[0]
    assert before.spec["suite"] == str(suite.resolve())  # spec.yaml is written elsewhere: an absolute path
    suite.write_bytes(suite.read_bytes() + b"\n")
    assert load_sweep(path).points[0].key != before.key


ERRORS = [
    ("base: base.yaml\ngird: {}\n", r"unknown top-level key\(s\) \['gird'\]; known: "),
    ("name: x\n", r"write exactly one of base .* got neither"),
    ("base: base.yaml\nspec: {name: x}\n", r"exactly one of base .* got both"),
    ("base: missing.yaml\n", r"base: .*missing.yaml does not exist"),
    ("base: base.yaml\ngrid: {arms.tgs.thr_std: [0.3]}\n",
     r"s.sweep.yaml: grid: arms.tgs.thr_std: no arm 'tgs' in the base spec; arms: baseline, tsg\. "),
    ("base: base.yaml\ngrid: {arms.tsg.thr_sd: [0.3]}\n", r"grid: arms.tsg.thr_sd: 'thr_sd' is not a policy parameter"),
    ("base: base.yaml\nzip: {tiers.heavy.max_tokens: [1]}\n",
     r"zip: tiers.heavy.max_tokens: no tier 'heavy' .*light, std, enh"),
    ("base: base.yaml\ngrid: {tiers.light.max_tok: [1]}\n", r"'max_tok' is not a tier setting"),
    ("base: base.yaml\ngrid: {load.period: [1]}\n", r"'period' is not a load setting"),
    ("base: base.yaml\ngrid: {lod.period_ms: [1]}\n", r"'lod' is not a spec key"),
    ("base: base.yaml\ngrid: {report.resamples: [500]}\n", r"'resamples' is not a report setting"),
    ("base: base.yaml\noverrides: {arms.tgs.thr_std: 0.3}\n", r"overrides: arms.tgs.thr_std: no arm 'tgs'"),
    ("base: base.yaml\npoints: [{arms.tsg.thr_std: 0.3}, {arms.tgs.thr_std: 0.3}]\n", r"points\[1\]: arms.tgs"),
    ("base: base.yaml\ngrid: {arms.tsg.thr_std: []}\n", r"grid: arms.tsg.thr_std must be a non-empty list"),
    ("base: base.yaml\ngrid: {arms.tsg.thr_std: 0.3}\n", r"grid: arms.tsg.thr_std must be a non-empty list"),
    ("base: base.yaml\npoints: []\n", r"points must be a non-empty list"),
    ("base: base.yaml\nzip: {arms.tsg.thr_std: [0.3, 0.4], load.timeout_s: [5]}\n",
     r"zip: the lists must have equal lengths"),
    ("base: base.yaml\ngrid: {arms.tsg.thr_std: [0.3]}\nzip: {arms.tsg.thr_std: [0.4]}\n", r"in both grid and zip"),
    ("base: base.yaml\ngrid: {arms.tsg.thr_std: [0.3, 2.0]}\n",
     r"point p001 \(arms.tsg.thr_std=2.0\): arms.tsg: policy thresholds must satisfy"),
    ("base: base.yaml\ngrid: {tiers.light.max_tokens: [32, many]}\n",
     r"point p001 \(tiers.light.max_tokens=\"many\"\): tiers.light.max_tokens must be a whole number"),
    ("base: base.yaml\npoints: [{report.n_resamples: 10}]\n", r"point p000 .*n_resamples must be >= 100"),
    ("base: base.yaml\npoints: [{report.co_correction: 'no'}]\n", r"report.co_correction must be bool"),
    ("base: base.yaml\nreplicates: 0\n", r"replicates must be a whole number >= 1; got 0"),
    ("base: base.yaml\nmode: papermill\n", r"mode must be one of \['in-process', 'notebook'\]"),
    ("base: base.yaml\nmode: notebook\n", r"mode notebook needs notebook: PATH"),
    ("base: base.yaml\nmode: notebook\nnotebook: nb.ipynb\n", r"notebook: .*nb.ipynb does not exist"),
    ("base: base.yaml\nnotebook: nb.ipynb\n", r"notebook is set but mode is 'in-process'"),
    ("base: base.yaml\ncompare: {gateway_arm: tgs}\n", r"compare.gateway_arm: no arm 'tgs' in the base spec"),
    ("base: base.yaml\ncompare: {reference: p009}\n", r"compare.reference: no point 'p009'; points: p000"),
    ("name: ../up\nbase: base.yaml\n", r"name '../up' contains"),
    ("base: base.yaml\ngrid: {arms.tsg.thr_std: [0.3]\n", r"s.sweep.yaml:\d+: not valid YAML"),
]


@pytest.mark.parametrize(("body", "pattern"), ERRORS)
def test_every_mistake_is_one_line_naming_the_file_and_the_key(tmp_path, base, body, pattern):
    path = _sweep(tmp_path, body)
    with pytest.raises(SpecError, match=pattern) as caught:
        load_sweep(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message or "s.sweep.yaml" in message


def test_a_missing_sweep_file_says_where_they_live(tmp_path):
    with pytest.raises(SpecError, match=r"sweep file .*nope.sweep.yaml does not exist; sweep files live in"):
        load_sweep(tmp_path / "nope.sweep.yaml")
