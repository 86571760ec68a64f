"""The report's figures: what each draws (censored marks, bands, CIs, notes for empty views), the files
save_figure writes (sizes, vector PDF with embedded TrueType fonts, SVG text), the palette, and that
nothing leaks into matplotlib's global state."""

from __future__ import annotations

import re
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from tsglab.errors import InvalidArgument
from tsglab.events import EventWriter, synthetic_event, write_manifest
from tsglab.report import ProtocolSettings, build_report
from tsglab.report.figures import (
    ENFORCEMENT_FIGURES,
    FIGURES,
    OKABE_ITO,
    WIDTH_IN,
    cost_quality_points,
    ecdf_figure,
    km_band,
    km_figure,
    p95_views_figure,
    save_figure,
)
from tsglab.report.frame import events_frame
from tsglab.report.tables import VIEWS
from tsglab.stats import kaplan_meier

SETTINGS = ProtocolSettings(n_resamples=200, seed=3)

# figures of every run (the enforcement figures need guardians: tests/test_enforcement_report.py draws them)
PLAIN_FIGURES = {name: draw for name, draw in FIGURES.items() if name not in ENFORCEMENT_FIGURES}


def make_events(n: int, *, arms=("baseline", "tsg"), timeout_every: int = 0, failed_arm: str | None = None,
                warmup: int = 2, seed: int = 0):
    """``n`` prompts per arm, lognormal latencies (the second arm faster and cheaper); with
    ``timeout_every`` = k, every k-th request of each arm times out (censored at 3000 ms, above every
    answer); ``failed_arm`` answers nothing (HTTP 5xx)."""
    rng = np.random.default_rng(seed)
    events, seq = [], 0
    for i in range(n):
        for j, arm in enumerate(arms):
            raw = float(rng.lognormal(np.log(300.0 / (1 + j)), 0.5))
            common = {"arm": arm, "seq": seq, "co_ms": raw + float(rng.exponential(10.0)), "in_warmup": i < warmup,
                      "quality": float(rng.random() < 0.8), "cost_ms": raw * 2 / (1 + j), "timeout_s": 3.0,
                      "run_id": "fig"}
            if arm == failed_arm:
                events.append(synthetic_event(f"p{i}", raw_ms=raw, error_kind="http_5xx", **common))
            elif timeout_every and i % timeout_every == timeout_every - 1:
                common["co_ms"] = 3000.0 + common["co_ms"] - raw
                events.append(synthetic_event(f"p{i}", raw_ms=3000.0, timeout=True, **common))
            else:
                events.append(synthetic_event(f"p{i}", raw_ms=raw, **common))
            seq += 1
    return events


def frames_of(events) -> dict[str, pd.DataFrame]:
    frame = events_frame(events)
    return {arm: part.reset_index(drop=True) for arm, part in frame.groupby("arm", sort=False)}


def report_of(tmp_path, events, *, write: bool = False):
    run_dir = tmp_path / "fig"
    with EventWriter(run_dir) as writer:
        for event in events:
            writer.write(event)
    write_manifest(run_dir, {"run_id": "fig", "status": "complete", "seed": 3, "spec": {"load": {"timeout_s": 3}}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN statistics of tiny or empty arms
        return build_report(run_dir, settings=SETTINGS, write=write)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A normal two-arm report with a few timeouts (2 of 60 per arm: the P95 stays identifiable)."""
    return report_of(tmp_path_factory.mktemp("normal"), make_events(60, timeout_every=25))


def lines_with(fig: Figure, gid: str, ax=None):
    axes = [ax] if ax is not None else fig.axes
    return [line for a in axes for line in a.lines if line.get_gid() == gid]


def n_points(lines) -> int:
    return sum(len(line.get_xdata()) for line in lines)


# ---- every figure ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["column", "page"])
@pytest.mark.parametrize("name", list(PLAIN_FIGURES))
def test_every_figure_is_drawn_at_its_size_without_touching_global_state(report, name, size):
    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    fig = FIGURES[name](report, size=size)
    assert isinstance(fig, Figure)
    assert fig.get_size_inches()[0] == pytest.approx(WIDTH_IN[size])
    assert fig.axes
    assert all(len(ax.lines) + len(ax.collections) > 0 for ax in fig.axes)
    texts = [t for ax in fig.axes for t in (ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    assert texts
    assert all(t.get_fontsize() <= 8 for t in texts)  # legible at column size, not poster size
    assert any("ms" in t.get_text() or "quality" in t.get_text() for t in texts)  # units on the axes
    assert dict(matplotlib.rcParams) == before  # style applied locally (rc_context), never globally
    assert matplotlib.get_backend() == backend  # no backend forced


def test_a_bad_size_is_one_clear_error(report):
    with pytest.raises(InvalidArgument, match="`size` must be 'column' or 'page'; got 'poster'"):
        ecdf_figure(report, size="poster")


def test_a_figure_of_something_else_is_one_clear_error():
    with pytest.raises(InvalidArgument, match="a figure needs a RunReport or a dict"):
        ecdf_figure([1, 2, 3])


# ---- censoring ---------------------------------------------------------------------------------


def _view_timeouts(frames, kind, scope):
    counts = {}
    for arm, frame in frames.items():
        rows = frame[~frame["failed"]]
        rows = rows if scope == "Overall" else rows[rows["warm"]]
        counts[arm] = int(rows["timeout"].sum())
    return counts


def test_ecdf_marks_each_timeout_of_each_view_as_censored(report):
    fig = ecdf_figure(report)
    colours = dict(zip(report.frames, (OKABE_ITO["blue"].lower(), OKABE_ITO["vermillion"].lower()), strict=True))
    assert sum(_view_timeouts(report.frames, "Raw", "Overall").values()) > 0
    for ax, (kind, scope) in zip(fig.axes, VIEWS, strict=True):
        assert ax.get_title() == f"{kind} / {scope}"
        for arm, expected in _view_timeouts(report.frames, kind, scope).items():
            marks = [line for line in lines_with(fig, "censored", ax) if to_hex(line.get_color()) == colours[arm]]
            assert n_points(marks) == expected


def test_ecdf_is_the_kaplan_meier_distribution_so_timeouts_never_count_as_answers():
    """Timeouts censored above every answer: the distribution stops at the answered share (not at 1),
    and every step equals 1 − S(t) of the reference Kaplan–Meier (lifelines)."""
    lifelines = pytest.importorskip("lifelines")
    frames = frames_of(make_events(30, timeout_every=5))
    fig = ecdf_figure(frames)
    ax = fig.axes[0]  # Raw / Overall
    for line, frame in zip(lines_with(fig, "distribution", ax), frames.values(), strict=True):
        answered = frame[~frame["failed"]]
        times, observed = answered["raw_ms"].to_numpy(), ~answered["timeout"].to_numpy()
        top = float(np.max(line.get_ydata()))
        assert top == pytest.approx(observed.mean())  # 24 of 30 answered: 0.8, where an ECDF would say 1
        fitter = lifelines.KaplanMeierFitter().fit(times, observed)
        x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        expected = 1 - fitter.survival_function_at_times(x).to_numpy()
        assert np.allclose(y[1:-1], expected[1:-1])  # the steps (the ends only extend the first and last)


def test_km_figure_marks_timeouts_and_draws_a_band_per_arm(report):
    fig = km_figure(report)
    for ax, kind in zip(fig.axes, ("Raw", "CO"), strict=True):
        assert ax.get_title() == f"{kind} / Overall"
        assert n_points(lines_with(fig, "censored", ax)) == sum(_view_timeouts(report.frames, kind, "Overall").values())
        assert len([c for c in ax.collections if c.get_gid() == "band"]) == len(report.frames)
        for line in lines_with(fig, "survival", ax):
            y = np.asarray(line.get_ydata())
            assert y[0] == 1.0  # a survival curve: from 1, never rising
            assert np.all(np.diff(y) <= 0)


def test_km_band_contains_the_curve_and_agrees_with_lifelines():
    lifelines = pytest.importorskip("lifelines")
    rng = np.random.default_rng(7)
    times = rng.lognormal(5, 0.7, 120)
    censored = rng.random(120) < 0.15
    band = km_band(kaplan_meier(times, censored))
    survival = band.curve.survival
    assert np.all(band.lower <= survival + 1e-12)
    assert np.all(survival <= band.upper + 1e-12)
    fitter = lifelines.KaplanMeierFitter().fit(times, ~censored)  # lifelines' default: Greenwood log-log
    reference = fitter.confidence_interval_.loc[band.curve.time].to_numpy()
    assert np.allclose(band.lower, reference[:, 0])
    assert np.allclose(band.upper, reference[:, 1])


def test_km_band_narrows_as_n_grows():
    rng = np.random.default_rng(11)
    grid = np.quantile(rng.lognormal(5, 0.7, 10_000), [0.2, 0.5, 0.8])  # inside every sample's range

    def width(n):
        band = km_band(kaplan_meier(rng.lognormal(5, 0.7, n), np.zeros(n, bool)))
        index = np.searchsorted(band.curve.time, grid, side="right") - 1
        return float(np.mean(band.upper[index] - band.lower[index]))

    widths = [width(n) for n in (30, 300, 3000)]
    assert widths[0] > widths[1] > widths[2]
    assert widths[1] / widths[2] == pytest.approx(np.sqrt(10), rel=0.35)  # the 1/√n rate


def test_km_band_alpha_is_checked():
    with pytest.raises(InvalidArgument, match=r"`alpha` must be in \(0, 1\); got 1.5"):
        km_band(kaplan_meier([1.0, 2.0], [False, False]), alpha=1.5)


# ---- the four P95 views ------------------------------------------------------------------------


def test_p95_views_draws_every_view_with_its_ci(report):
    fig = p95_views_figure(report)
    p95, p50 = lines_with(fig, "p95"), lines_with(fig, "p50")
    identifiable = report.p95_views["p95_ms"].notna()
    assert len(p95) == int(identifiable.sum())
    assert len(p50) == int(report.p95_views["p50_ms"].notna().sum())
    # each P95 whisker spans its CI from the table (order: views top to bottom, arms in order)
    ax = fig.axes[0]
    whiskers = [c for c in ax.collections if c.get_segments()]
    spans = sorted(round(float(s[0][0]), 6) for c in whiskers for s in c.get_segments())
    for low in report.p95_views.loc[identifiable, "p95_ci_low"]:
        assert round(float(low), 6) in spans


def test_p95_views_marks_a_view_that_is_not_identifiable_at_its_lower_bound(tmp_path):
    report = report_of(tmp_path, make_events(40, timeout_every=4))  # 25 % censored: no P95
    table = report.p95_views
    not_identifiable = table["p95_ms"].isna() & table["p95_lower_bound_ms"].notna()
    assert not_identifiable.any()
    fig = p95_views_figure(report)
    marks = lines_with(fig, "lower-bound")
    assert len(marks) == int(not_identifiable.sum())
    assert sorted(float(m.get_xdata()[0]) for m in marks) == pytest.approx(
        sorted(table.loc[not_identifiable, "p95_lower_bound_ms"]))
    legend = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any("P95 ≥" in text and "censored" in text for text in legend)


# ---- arms without answers, tiny runs -----------------------------------------------------------


def _notes(fig: Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == "note")


def test_an_arm_that_answered_nothing_is_noted_not_dropped(tmp_path):
    report = report_of(tmp_path, make_events(12, failed_arm="tsg"))
    for name, draw in PLAIN_FIGURES.items():
        fig = draw(report, size="column")
        assert isinstance(fig, Figure), name
    assert "n = 0: tsg" in _notes(ecdf_figure(report))
    assert "n = 0: tsg" in _notes(km_figure(report))
    assert "not computed (no answered request): tsg, Raw / Overall" in _notes(p95_views_figure(report))


def test_a_run_where_nothing_was_answered_has_no_latency_figures(tmp_path):
    events = [synthetic_event(f"p{i}", arm=arm, seq=2 * i + j, error_kind="http_5xx", run_id="fig")
              for i in range(3) for j, arm in enumerate(("baseline", "tsg"))]
    report = report_of(tmp_path, events)
    assert ecdf_figure(report) is None
    assert km_figure(report) is None
    assert p95_views_figure(report) is None
    assert isinstance(FIGURES["load_timeline"](report), Figure)  # the failures are on the timeline
    assert isinstance(FIGURES["cost_quality"](report), Figure)  # failed attempts still cost their time


def test_an_arm_whose_every_request_timed_out_is_all_censored_marks():
    frames = frames_of(make_events(6, timeout_every=1, warmup=0))
    fig = ecdf_figure(frames)
    marks = lines_with(fig, "censored", fig.axes[0])
    assert n_points(marks) == 12
    assert all(np.all(np.asarray(line.get_ydata()) == 0) for line in marks)  # no answer: 1 − S stays 0
    assert n_points(lines_with(km_figure(frames), "censored")) == 24  # both panels, Raw and CO


@pytest.mark.parametrize("n", [1, 2])
def test_tiny_runs_draw_every_figure(tmp_path, n):
    report = report_of(tmp_path, make_events(n, warmup=0))
    for name, draw in PLAIN_FIGURES.items():
        for size in ("column", "page"):
            assert isinstance(draw(report, size=size), Figure), (name, size)


# ---- cost against quality ----------------------------------------------------------------------


def test_cost_quality_ci_contains_the_point_and_is_reproducible(report):
    points = cost_quality_points(report)
    again = cost_quality_points(report)
    pd.testing.assert_frame_equal(points, again)  # the report's seed: the same intervals every time
    for row in points.itertuples():
        assert row.cost_ci_low < row.cost_ms < row.cost_ci_high
        assert row.quality_ci_low < row.quality < row.quality_ci_high
        frame = report.frames[row.arm]
        assert row.cost_ms == pytest.approx(frame["cost_ms"].mean())  # the report's own estimate
    fig = FIGURES["cost_quality"](report)
    ax = fig.axes[0]
    for row in points.itertuples():
        (line,) = [line for line in ax.lines if line.get_gid() == f"arm:{row.arm}"]
        assert (line.get_xdata()[0], line.get_ydata()[0]) == pytest.approx((row.cost_ms, row.quality))
    assert sorted(t.get_text() for t in ax.texts) == sorted(report.frames)  # arms labelled at their point


def test_cost_quality_resamples_prompts_not_requests():
    """A prompt asked twice moves as one: doubling every request leaves the interval as it was."""
    once = frames_of(make_events(25))
    twice = {arm: pd.concat([frame, frame], ignore_index=True) for arm, frame in once.items()}
    a = cost_quality_points(once, n_resamples=400, seed=1)
    b = cost_quality_points(twice, n_resamples=400, seed=1)
    columns = ["cost_ms", "cost_ci_low", "cost_ci_high", "quality", "quality_ci_low", "quality_ci_high"]
    assert np.allclose(a[columns].to_numpy(), b[columns].to_numpy())


# ---- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["column", "page"])
def test_save_figure_writes_vector_pdf_and_svg_and_a_300_dpi_png(report, tmp_path, size):
    from PIL import Image

    fig = ecdf_figure(report, size=size)
    width, height = fig.get_size_inches()
    before = dict(matplotlib.rcParams)
    paths = save_figure(fig, tmp_path / "sub" / "ecdf")
    assert [p.name for p in paths] == ["ecdf.pdf", "ecdf.svg", "ecdf.png"]
    assert dict(matplotlib.rcParams) == before
    with Image.open(paths[2]) as png:
        assert png.size == (round(width * 300), round(height * 300))
    pdf = paths[0].read_bytes()
    assert b"/FontFile2" in pdf  # TrueType (Type 42) font program embedded
    assert b"/Type3" not in pdf  # no bitmap (Type 3) fonts
    assert b"/Subtype /Image" not in pdf  # no raster image: vector only
    assert len(pdf) < 200_000
    svg = paths[1].read_text(encoding="utf-8")
    assert len(re.findall(r"<text\b", svg)) > 10  # text stays text
    assert "<image" not in svg
    assert "Raw / Overall" in svg


def test_save_figure_rejects_an_unknown_format(report, tmp_path):
    with pytest.raises(InvalidArgument, match="`formats` may hold pdf, svg, png; got 'jpg'"):
        save_figure(ecdf_figure(report), tmp_path / "x", formats=("pdf", "jpg"))


def test_saved_files_are_the_same_every_time(report, tmp_path):
    fig = p95_views_figure(report)
    first = [p.read_bytes() for p in save_figure(fig, tmp_path / "a", formats=("pdf", "svg"))]
    second = [p.read_bytes() for p in save_figure(fig, tmp_path / "b", formats=("pdf", "svg"))]
    assert first == second  # no timestamps, stable ids: committed figures change only when the data does


def test_the_report_writes_every_figure_at_both_sizes(tmp_path):
    report = report_of(tmp_path, make_events(10, timeout_every=5), write=True)
    folder = report.written_to / "figures"
    assert not any((folder / f"{name}.pdf").exists() for name in ENFORCEMENT_FIGURES)  # no guardians in this run
    for name in PLAIN_FIGURES:
        for stem in (name, f"{name}-page"):
            for ext in ("pdf", "svg", "png"):
                assert (folder / f"{stem}.{ext}").stat().st_size > 1000, f"{stem}.{ext}"


# ---- palette -----------------------------------------------------------------------------------


def test_the_palette_is_okabe_ito_with_a_marker_and_line_style_per_arm(tmp_path):
    # Okabe & Ito (2008), "Color Universal Design", the published sRGB values
    assert OKABE_ITO == {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
                         "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00",
                         "reddish purple": "#CC79A7"}
    arms = ("a", "b", "c", "d")
    frames = frames_of(make_events(6, arms=arms, warmup=0))
    palette = {c.lower() for c in OKABE_ITO.values()}
    fig = ecdf_figure(frames)
    curves = lines_with(fig, "distribution", fig.axes[0])
    assert {to_hex(line.get_color()) for line in curves} <= palette
    assert len({to_hex(line.get_color()) for line in curves}) == len(arms)
    assert len({str(line.get_linestyle()) for line in curves}) == len(arms)  # readable in grey too
    points = lines_with(FIGURES["load_timeline"](frames), "co")
    assert len({line.get_marker() for line in points}) == len(arms)
    assert {to_hex(line.get_color()) for line in points} <= palette
