"""The request suite: its JSONL file format, the bundled suite, and the quality checks.

``load_suite()`` reads the bundled suite (``tsglab/suite/data/bundled.jsonl``) or a file of your own
(format: ``docs/suite-format.md``); ``score_answer(item, text)`` scores a model's output against the
item's gold check (code answers run in :mod:`tsglab.suite.sandbox`); :mod:`tsglab.suite.panel` holds
the gaming panel of non-answers that no check may credit.
"""

from __future__ import annotations

from tsglab.suite._format import (
    CHECK_KINDS,
    LANGS,
    RUN_CHECK_KINDS,
    TASKS,
    SuiteItem,
    bundled_suite_path,
    ctx_bucket,
    load_suite,
)
from tsglab.suite.checks import (
    ECHO_SHARE,
    QualityScore,
    echo_share,
    extract_numbers,
    normalize_answer,
    score_answer,
    score_answers,
)
from tsglab.suite.enforcement import (
    ENFORCEMENT_GUARDIANS,
    EnforcementCase,
    enforcement_suite_path,
    load_enforcement_suite,
)
from tsglab.suite.panel import NON_ANSWER_KINDS, PanelScore, gold_answer, non_answers, panel_scores, panel_table
from tsglab.suite.sandbox import SandboxLimits, SandboxResult, run_sandboxed

__all__ = [
    "CHECK_KINDS",
    "ECHO_SHARE",
    "ENFORCEMENT_GUARDIANS",
    "EnforcementCase",
    "LANGS",
    "NON_ANSWER_KINDS",
    "PanelScore",
    "QualityScore",
    "RUN_CHECK_KINDS",
    "SandboxLimits",
    "SandboxResult",
    "SuiteItem",
    "TASKS",
    "bundled_suite_path",
    "ctx_bucket",
    "echo_share",
    "enforcement_suite_path",
    "extract_numbers",
    "gold_answer",
    "load_enforcement_suite",
    "load_suite",
    "non_answers",
    "normalize_answer",
    "panel_scores",
    "panel_table",
    "run_sandboxed",
    "score_answer",
    "score_answers",
]
