"""``report`` can print without writing, and still prints when it cannot write (issue 10, item 10, report part).

``--no-write`` (``write=False``) creates and changes no file. A place the report cannot write to (a
read-only run directory, a full disk) no longer ends in an ``OSError`` traceback: the report is printed
and one line says it could not be written, where and why. Tests may run as root, where a read-only
mode does not stop writes, so the failing writes are also simulated with a monkeypatched ``OSError``.
"""

from __future__ import annotations

import errno
import os
import pathlib
import warnings

import pytest

from tsglab.api import build_report
from tsglab.cli import main
from tsglab.errors import TsglabWarning
from tsglab.events import EventWriter, synthetic_event, write_manifest

ARGS = ["--resamples", "100"]


def make_run(parent: pathlib.Path, name: str = "run") -> pathlib.Path:
    run_dir = parent / name
    with EventWriter(run_dir) as writer:
        for i in range(6):
            for arm in ("baseline", "tsg"):
                writer.write(synthetic_event(f"p{i}", arm=arm, seq=2 * i + (arm == "tsg"), run_id=name,
                                             raw_ms=100.0 + 7 * i + (arm == "tsg")))
    write_manifest(run_dir, {"run_id": name, "status": "complete", "seed": 1, "spec": {}})
    return run_dir


def snapshot(root: pathlib.Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_write_false_creates_and_changes_nothing(tmp_path):
    run_dir = make_run(tmp_path)
    before = snapshot(tmp_path)
    report = build_report(run_dir, write=False, settings=_settings())
    assert snapshot(tmp_path) == before
    assert report.written_to is None
    assert report.write_error == ""
    assert "Verdict at" in str(report)


def test_write_true_says_where_it_wrote(tmp_path):
    run_dir = make_run(tmp_path)
    report = build_report(run_dir, settings=_settings())
    assert report.written_to == run_dir
    assert (run_dir / "tables" / "headline.md").exists()


def test_cli_no_write_prints_the_report_and_writes_nothing(tmp_path, capsys):
    run_dir, other = make_run(tmp_path), make_run(tmp_path, "other")
    before = snapshot(tmp_path)
    assert main(["report", str(run_dir), "--no-write", *ARGS]) == 0
    out = capsys.readouterr().out
    assert "Verdict at" in out
    assert out.rstrip().endswith("Not written (--no-write): no file was created or changed.")
    assert main(["report", str(run_dir), "--vs", str(other), "--no-write", *ARGS]) == 0  # no comparison folder
    assert snapshot(tmp_path) == before


def test_magic_honours_no_write_and_the_report_options(tmp_path):
    pytest.importorskip("IPython")
    from tsglab.jupyter.magics import tsg

    run_dir = make_run(tmp_path)
    before = snapshot(tmp_path)
    report = tsg(f"report {run_dir} --no-write {' '.join(ARGS)}")
    assert snapshot(tmp_path) == before
    assert report.written_to is None
    assert report.meta["settings"]["n_resamples"] == 100


def _fail_writes_under(monkeypatch, root: pathlib.Path, error: int) -> None:
    """Every mkdir / file write under ``root`` raises ``OSError(error)``, as a read-only or full file system does."""
    def guard(path) -> None:
        if pathlib.Path(path).resolve().is_relative_to(root.resolve()):
            raise OSError(error, os.strerror(error), str(path))

    original = {name: getattr(pathlib.Path, name) for name in ("mkdir", "write_text", "write_bytes", "open")}

    def mkdir(self, *args, **kwargs):
        guard(self)
        return original["mkdir"](self, *args, **kwargs)

    def write_text(self, *args, **kwargs):
        guard(self)
        return original["write_text"](self, *args, **kwargs)

    def write_bytes(self, *args, **kwargs):
        guard(self)
        return original["write_bytes"](self, *args, **kwargs)

    def open_(self, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+"):
            guard(self)
        return original["open"](self, mode, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    monkeypatch.setattr(pathlib.Path, "open", open_)


@pytest.mark.parametrize(("error", "reason"), [(errno.EROFS, "Read-only file system"),
                                               (errno.EACCES, "Permission denied"),
                                               (errno.ENOSPC, "No space left on device")])
def test_a_place_that_cannot_be_written_still_gets_the_report(tmp_path, monkeypatch, error, reason):
    run_dir = make_run(tmp_path)
    _fail_writes_under(monkeypatch, run_dir, error)
    with pytest.warns(TsglabWarning, match=f"could not write the report's files to {run_dir} .*{reason}"):
        report = build_report(run_dir, settings=_settings())
    assert report.written_to is None
    text = str(report)
    assert "Verdict at" in text
    last = text.rstrip().splitlines()[-1]
    assert last.startswith(f"Not written: could not write the report's files to {run_dir} (")
    assert reason in last
    assert "--no-write" in last


def test_cli_on_a_read_only_place_prints_the_report_and_one_line(tmp_path, monkeypatch, capsys):
    run_dir = make_run(tmp_path)
    _fail_writes_under(monkeypatch, run_dir, errno.EROFS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TsglabWarning)
        assert main(["report", str(run_dir), *ARGS]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "Verdict at" in captured.out
    lines = [line for line in captured.out.splitlines() if line.startswith("Not written")]
    assert len(lines) == 1
    assert str(run_dir) in lines[0]
    assert "Read-only file system" in lines[0]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_really_read_only_run_directory(tmp_path):
    run_dir = make_run(tmp_path)
    run_dir.chmod(0o555)
    try:
        with pytest.warns(TsglabWarning, match="could not write"):
            report = build_report(run_dir, settings=_settings())
        assert "Not written" in str(report)
    finally:
        run_dir.chmod(0o755)


def _settings():
    from tsglab.report import ProtocolSettings

    return ProtocolSettings(n_resamples=100, seed=1)
