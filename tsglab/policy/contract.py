"""Compatibility alias: the JSON output contract now lives in :mod:`tsglab.jsoncontract`.

(It moved to the bottom layer because the suite's quality checks, below the policy, use it too.)
"""

from __future__ import annotations

from tsglab.jsoncontract import ContractResult, check_json_contract, extract_json_text

__all__ = ["ContractResult", "check_json_contract", "extract_json_text"]
