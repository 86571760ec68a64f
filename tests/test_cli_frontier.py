"""``tsglab frontier``: tables, figure and points from a replay folder; ``frontier collect`` over a spec's ladder;
errors that name the file, the key and the fix."""

from __future__ import annotations

import pandas as pd
import pytest

from tsglab import cli
from tsglab.replay import load_replay, simulate_replay

GRID = "base: {max_upgrades: 1}\ngrid: {thr_std: [0.2, 0.4, 0.8], thr_enh: [0.85, 1.2], json_floor: [light, std]}\n"
SPEC = """\
name: replay-test
prompts: {limit: 6, seed: 1}
arms: {enh_only: {kind: baseline}}
energy: {meter: none}
load: {mode: paced, period_ms: 0, timeout_s: 5}
tiers:
  light: {backend: scripted, options: {reply: "ok"}}
  std: {backend: scripted, options: {reply: "A full answer to the request, with reasons."}}
  enh: {backend: scripted, options: {reply: "A full answer to the request, with reasons."}}
"""


def test_frontier_writes_tables_figure_and_points(tmp_path, capsys):
    simulate_replay(150, seed=4).save(tmp_path)
    (tmp_path / "grid.yaml").write_text(GRID)
    out = tmp_path / "out"
    assert cli.main(["frontier", str(tmp_path), "--grid", str(tmp_path / "grid.yaml"), "--resamples", "50",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Frontier(15 configurations" in printed
    assert "APGR" in printed
    assert "Calibration(" in printed
    for name in ("frontier", "frontier_metrics", "calibration"):
        for suffix in (".tex", ".narrow.tex", ".md", ".html"):
            assert (out / "tables" / f"{name}{suffix}").stat().st_size > 0
    for fmt in ("pdf", "svg", "png"):
        assert (out / "figures" / f"frontier.{fmt}").stat().st_size > 0
    points = pd.read_csv(out / "points.csv")
    assert len(points) == 12 + 3
    assert {"thr_std", "thr_enh", "json_floor", "on_frontier"} <= set(points)
    markdown = (out / "tables" / "frontier.md").read_text()
    assert "light alone" in markdown
    assert "enh alone" in markdown
    assert "B = 50" in markdown


def test_frontier_errors(tmp_path, capsys):
    simulate_replay(40, seed=4).save(tmp_path)
    (tmp_path / "grid.yaml").write_text("grid: {thr_std: [0.2], colour: [red]}\n")
    assert cli.main(["frontier", str(tmp_path), "--grid", str(tmp_path / "grid.yaml")]) == 2
    assert "grid.yaml: grid.colour: not a parameter a grid may vary" in capsys.readouterr().err
    assert cli.main(["frontier", str(tmp_path / "nothing")]) == 2
    assert "tsglab frontier collect SPEC --out DIR" in capsys.readouterr().err
    assert cli.main(["frontier", "collect", "spec.yaml"]) == 2
    assert "needs the spec and --out" in capsys.readouterr().err
    assert cli.main(["frontier", str(tmp_path), "--limit", "3"]) == 2
    assert "--limit belongs to `tsglab frontier collect`" in capsys.readouterr().err


def test_collect_runs_the_spec_prompts_on_every_tier(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "replay"
    assert cli.main(["frontier", "collect", str(spec), "--out", str(out), "--limit", "4"]) == 0
    assert "replay data: 4 prompts x 3 tiers" in capsys.readouterr().out
    data = load_replay(out)
    assert data.n_prompts == 4
    assert data.ladder == ("light", "std", "enh")
    assert data.present[:, :, 0].all()


def test_spec_for_collection_parses():
    from tsglab.config import load_spec

    spec = load_spec("experiments/replay.yaml")
    assert list(spec.tiers) == ["light", "std", "enh"]
    with pytest.raises(Exception, match="limit"):
        load_spec("experiments/replay.yaml", {"prompts.limit": 0})
