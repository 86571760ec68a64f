"""Runtime answer checks of the controlled executor (no gold data): JSON contract, length, refusal."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from tsglab.config import PolicyConfig
from tsglab.jsoncontract import check_json_contract

# Refusal openers in English and Chinese; matched near the start of the answer only, so an answer
# that merely quotes such a phrase later on is not a refusal.
_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry, (but )?i|i can ?not|i can'?t|i'?m (not able|unable)|i am (not able|unable)"
    r"|as an ai\b|i (won'?t|will not) (be able to )?(help|assist|provide)|抱歉|对不起|我不能|我无法|作为一个?ai)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    reason: str = ""  # "" when ok; else json_contract | too_short | refusal
    detail: str = ""
    json_ok: bool | None = None
    refusal: bool = False


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(unicodedata.normalize("NFKC", text).strip()[:160]))


def check_answer(text: str, *, task: str, json_schema: dict | None, config: PolicyConfig) -> CheckResult:
    """The executor's gate: a json task must meet its contract; every answer must be long enough
    and, when ``config.check_refusal``, not a refusal."""
    json_ok = None
    if task == "json":
        contract = check_json_contract(text, json_schema)
        json_ok = contract.ok
        if not contract.ok:
            return CheckResult(False, "json_contract", contract.error, json_ok=False)
    if len(text.strip()) < config.min_answer_chars:
        return CheckResult(False, "too_short", f"{len(text.strip())} < {config.min_answer_chars} chars",
                           json_ok=json_ok)
    refusal = is_refusal(text)
    if config.check_refusal and refusal:
        return CheckResult(False, "refusal", text.strip()[:80], json_ok=json_ok, refusal=True)
    return CheckResult(True, json_ok=json_ok, refusal=refusal)
