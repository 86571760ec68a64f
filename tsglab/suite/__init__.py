"""The request suite: its JSONL file format, the bundled suite, and the quality checks.

``load_suite()`` reads the bundled suite (``tsglab/suite/data/bundled.jsonl``) or a file of your own
(format: ``docs/suite-format.md``); ``score_answer(item, text)`` scores a model's output against the
item's gold check.
"""

from __future__ import annotations

from tsglab.suite._format import (
    CHECK_KINDS,
    LANGS,
    TASKS,
    SuiteItem,
    bundled_suite_path,
    ctx_bucket,
    load_suite,
)
from tsglab.suite.checks import QualityScore, extract_numbers, normalize_answer, score_answer

__all__ = [
    "CHECK_KINDS",
    "LANGS",
    "QualityScore",
    "SuiteItem",
    "TASKS",
    "bundled_suite_path",
    "ctx_bucket",
    "extract_numbers",
    "load_suite",
    "normalize_answer",
    "score_answer",
]
