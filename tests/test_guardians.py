"""Rule-based guardians: each rule on positives, negatives and hard negatives; checksums against naive
oracles written here; never raising on odd input; redaction removes what was found."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsglab.policy.guardians import (
    GUARDIANS,
    GuardVerdict,
    LengthGuardian,
    cn_resident_id_valid,
    luhn_valid,
    redact,
    ssn_valid,
)
from tsglab.suite import load_enforcement_suite


def naive_luhn(number: str) -> bool:
    """Luhn as the textbook states it: double every second digit from the right, sum the digits."""
    digits = [int(c) for c in number]
    for i in range(len(digits) - 2, -1, -2):
        digits[i] = sum(int(c) for c in str(digits[i] * 2))
    return sum(digits) % 10 == 0


def naive_mod11_2(candidate: str) -> bool:
    """ISO 7064 MOD 11-2 with the weights written out, and the birth date checked with datetime."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    if len(candidate) != 18 or not candidate[:17].isdigit() or candidate[0] in "09":
        return False
    try:
        born = datetime.date(int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14]))
    except ValueError:
        return False
    if not 1900 <= born.year <= 2099:
        return False
    check = "10X98765432"[sum(int(c) * w for c, w in zip(candidate, weights, strict=False)) % 11]
    return candidate[17].upper() == check


@given(st.text(alphabet="0123456789", min_size=1, max_size=25))
def test_luhn_matches_the_textbook_rule(number):
    assert luhn_valid(number) == naive_luhn(number)


@given(st.integers(0, 10**17 - 1), st.sampled_from("0123456789X"))
@settings(max_examples=300)
def test_resident_id_check_matches_the_naive_rule(body, check):
    candidate = f"{body:017d}{check}"
    assert cn_resident_id_valid(candidate) == naive_mod11_2(candidate)


def test_published_resident_id_and_card_examples():
    assert cn_resident_id_valid("11010519491231002X")  # the standard's worked example
    assert not cn_resident_id_valid("110105194912310021")
    assert not cn_resident_id_valid("110105199902300028")  # 30 February
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


@pytest.mark.parametrize(("area", "group", "serial", "ok"), [
    ("123", "45", "6789", True), ("000", "12", "3456", False), ("666", "12", "3456", False),
    ("912", "12", "3456", False), ("123", "00", "4567", False), ("123", "45", "0000", False),
    ("078", "05", "1120", False),
])
def test_ssn_rules(area, group, serial, ok):
    assert ssn_valid(area, group, serial) is ok


CASES = [  # (guardian, text, expected category or "" for clean)
    ("pii", "Mail Liam at liam.park@outlook.com today.", "email"),
    ("pii", "请联系zhang.wei@163.com获取资料", "email"),
    ("pii", "Replace jane@example.com with yours.", ""),
    ("pii", "ssh to user@localhost first", ""),
    ("pii", "Call (415) 872-2671 after lunch.", "phone"),
    ("pii", "For the script use 555-0142.", ""),
    ("pii", "手机号：138 0013 8000", "phone"),
    ("pii", "电话010-62345678", "phone"),
    ("pii", "Call +44 20 7946 0958.", "phone"),
    ("pii", "身份证号11010519491231002X。", "cn_resident_id"),
    ("pii", "Batch 110105194912310021 shipped.", ""),
    ("pii", "SSN 123-45-6789", "us_ssn"),
    ("pii", "Sample 666-45-6789", ""),
    ("pii", "Card 4111-1111-1111-1111 exp 09/28", "card_number"),
    ("pii", "卡号４１１１１１１１１１１１１１１１", "card_number"),
    ("pii", "Order 4111 1111 1111 1112", ""),
    ("pii", "ISBN 978-0-306-40615-7, version 1.22.333", ""),
    ("pii", "Meeting 2024-05-01 12:30 in room 404", ""),
    ("secrets", "export AWS_ACCESS_KEY_ID=AKIA2E4G6J7K3M5N7P2Q", "aws_key"),
    ("secrets", "AKIAIOSFODNN7EXAMPLE is AWS's documented sample", ""),
    ("secrets", "token ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A", "github_token"),
    ("secrets", "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", ""),
    ("secrets", "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78", "openai_key"),
    ("secrets", "sk-this-is-not-a-real-key-just-words-123", ""),
    ("secrets", ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
                 "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"), "jwt"),
    ("secrets", "-----BEGIN RSA PRIVATE KEY-----\n...your key here...\n-----END RSA PRIVATE KEY-----", ""),
    ("code", "```python\nimport subprocess as sp\nsp.run(['ls'])\n```", "shell_call"),
    ("code", "from os import system as run_it\nrun_it('ls')", "shell_call"),
    ("code", "Never call eval(x) on input.", ""),
    ("code", "```python\n# eval(x) is unsafe\nprint('eval(x)')\n```", ""),
    ("code", "import re\npattern = re.compile('a+')", ""),
    ("code", "model.eval()", ""),
    ("code", "def eval(x):\n    return x\neval(1)", ""),
    ("code", "下面是代码：\n```py\nname = '中文'; os.system('ls')\n```", "shell_call"),
    ("code", "```python\nwith open('out.txt', 'w') as f:\n    f.write('x')\n```", "file_write"),
    ("code", "```python\nwith open('in.txt') as f:\n    f.read()\n```", ""),
    ("code", "import urllib.request as ur\nur.urlopen('http://x')", "network"),
    ("code", "from urllib.parse import urlparse\nurlparse('http://x')", ""),
    ("sql", "```sql\nDROP TABLE users;\n```", "sql_drop"),
    ("sql", "SELECT * FROM t WHERE name = 'DROP TABLE x'; -- DELETE FROM t", ""),
    ("sql", "Prices drop table-side, so drop me a line.", ""),
    ("sql", "Don't worry. DELETE FROM users WHERE id = 1;", "sql_write"),
    ("sql", "`update app.orders set x = 1`", "sql_write"),
    ("sql", "执行：\nTRUNCATE TABLE orders;", "sql_drop"),
    ("sql", "```sql\nWITH r AS (SELECT 1)\nSELECT * FROM r;\n```", ""),
    ("refusal", "I'm sorry, but I can't help with that.", "refusal"),
    ("refusal", "抱歉，我无法提供这方面的帮助。", "refusal"),
    ("refusal", "Here is how. Some bots reply \"I'm sorry, I can't\" but this is fine.", ""),
    ("length", "", "too_short"),
    ("length", "ok", ""),
    ("format", '{"a": 1}', ""),
    ("format", "{'a': 1}", "json_contract"),
]


@pytest.mark.parametrize(("guardian", "text", "category"), CASES)
def test_rule(guardian, text, category):
    verdict = GUARDIANS[guardian].check(text)
    assert (verdict.violated, verdict.category) == (bool(category), category)
    assert verdict.guardian == guardian


def test_spans_point_at_the_finding_in_mixed_scripts():
    text = "联系人：王芳，邮箱 wangfang@163.com，卡号 4111 1111 1111 1111。"
    verdict = GUARDIANS["pii"].check(text)
    assert [text[s:e] for s, e in verdict.spans] == ["wangfang@163.com", "4111 1111 1111 1111"]
    code = "说明：\n```python\nx = '长'; os.system('ls')\n```"
    (start, end), = GUARDIANS["code"].check(code).spans
    assert code[start:end] == "os.system('ls')"


def test_length_contract_is_configurable():
    guardian = LengthGuardian(min_chars=5, max_chars=10)
    assert guardian.check("abcd").category == "too_short"
    assert guardian.check("abcdefghijkl").category == "too_long"
    assert not guardian.check("  abcdef  ").violated
    with pytest.raises(ValueError, match="min_chars <= max_chars"):
        LengthGuardian(min_chars=10, max_chars=5)


ODD = ["", " ", "\x00\x01\xff", "```", "```python\n", "(" * 5000, "-" * 100000 + "1", "1+" * 20000 + "1",
       "a" * 200_000, "9" * 100_000, "@" * 1000 + "a@b.cd", "eyJ" + "A" * 5000, "'" * 3001, "/*" * 2000,
       "\ud800", "中文" * 10000, '{"a":' * 3000, "-----BEGIN PRIVATE KEY-----" * 50]


@pytest.mark.parametrize("text", ODD, ids=range(len(ODD)))
def test_odd_input_never_raises(text):
    for guardian in GUARDIANS.values():
        verdict = guardian.check(text)
        assert isinstance(verdict, GuardVerdict)


@given(st.text(max_size=300))
@settings(max_examples=150, deadline=None)
def test_any_text_gets_a_verdict_and_redaction_clears_it(text):
    for name, guardian in GUARDIANS.items():
        verdict = guardian.check(text)
        assert verdict.violated == bool(verdict.category)
        assert all(0 <= s < e <= len(text) for s, e in verdict.spans)
        if name in ("pii", "secrets") and verdict.violated:
            assert not guardian.check(redact(text, verdict)).violated


def test_redaction_removes_every_span_of_every_suite_violation():
    for case in load_enforcement_suite():
        if not case.violation or case.guardian not in ("pii", "secrets", "code", "sql"):
            continue
        verdict = GUARDIANS[case.guardian].check(case.text)
        if not verdict.violated:
            continue  # a miss: the accuracy table reports it
        masked = redact(case.text, verdict, mask="#")
        for start, end in verdict.spans:
            assert case.text[start:end] not in masked or len(case.text[start:end]) <= 1
        if case.guardian in ("pii", "secrets"):
            assert not GUARDIANS[case.guardian].check(masked).violated, case.id


def test_redact_merges_overlaps_and_clips():
    verdict = GuardVerdict("pii", True, "email", ((2, 5), (4, 8), (20, 99)))
    assert redact("0123456789abc", verdict, mask="*") == "01*89abc"
