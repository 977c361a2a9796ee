"""Claims and verdicts: declared first, computed, refused when the baseline passes too."""

import json

import numpy as np
import pytest

from diffctrl.repro import Claim, Record, count_verdict, judge
from diffctrl_book.ledger import ledger


def _claim(key="rate"):
    return Claim(
        key,
        paper="han2024score",
        statement="error falls as n^-1/2",
        criterion="fitted slope within [-0.6, -0.4]",
        baseline="zero iterations",
    )


def test_count_verdict_rules():
    assert count_verdict([True, True, True]) == "confirmed"
    assert count_verdict([True, True, False]) == "confirmed with caveat"
    assert count_verdict([True, False, False, False]) == "inconclusive"
    assert count_verdict([False, False]) == "not reproduced"
    assert count_verdict([True, True, False], need=2 / 3) == "confirmed"
    with pytest.raises(ValueError, match="passes"):
        count_verdict([])


def test_judge_downgrades_a_positive_verdict_the_baseline_also_earns():
    # the baseline fails: the claim's own count stands
    assert judge([True, True, True], False) == ("confirmed", False)
    assert judge([True, True, False], False) == ("confirmed with caveat", False)
    # the baseline passes: a positive verdict decides nothing
    assert judge([True, True, True], True) == ("inconclusive", True)
    assert judge([True, True, False], True) == ("inconclusive", True)
    # a negative verdict stays negative although the baseline passes
    assert judge([False, False, False], True) == ("not reproduced", True)
    assert judge([True, False, False, False], True) == ("inconclusive", True)
    # no baseline at all
    assert judge([True, True], None) == ("confirmed", None)
    assert judge([False, False]) == ("not reproduced", None)
    with pytest.raises(ValueError, match="passes"):
        judge([], False)


def test_judge_counts_a_per_seed_baseline_by_the_same_rule():
    # baseline passes on 1 seed of 3: its own count is "inconclusive", not positive
    assert judge([True, True, True], [True, False, False]) == ("confirmed", False)
    # ... on 2 of 3: "confirmed with caveat", positive, so the claim is downgraded
    assert judge([True, True, True], [True, True, False]) == ("inconclusive", True)
    assert judge([False, True, False], [True, True, True]) == ("inconclusive", True)
    assert judge([False, False], [True, True]) == ("not reproduced", True)
    # need and caveat_need apply to claim and baseline alike
    assert judge([True, True, False], [False, False, True], need=2 / 3) == (
        "confirmed",
        False,
    )
    assert judge([True, True, True], [True, False, False], caveat_need=1 / 3) == (
        "inconclusive",
        True,
    )
    # numpy outcomes: an array is per-seed, a numpy bool is one outcome
    assert judge(np.array([True, True]), np.array([True, False])) == (
        "inconclusive",
        True,
    )
    assert judge(np.array([True, True]), np.bool_(False)) == ("confirmed", False)
    assert judge([True], np.float64(0.2) <= 0.03) == ("confirmed", False)
    with pytest.raises(TypeError, match="baseline"):
        judge([True], "no")


def test_judge_gives_what_record_verdict_accepts():
    rec = Record("demo", "smoke")
    rec.declare([_claim()])
    verdict, base = judge([True, True, True], [True, True, True])
    assert rec.verdict("rate", verdict, evidence={}, baseline_passes=base) == (
        "inconclusive"
    )
    assert rec.claims["rate"]["baseline_passes"] is True


def test_record_keeps_claims_and_verdicts(tmp_path):
    rec = Record("demo", "smoke")
    rec.declare([_claim()])
    rec.verdict(
        "rate",
        "confirmed",
        evidence={"slope": -0.51},
        baseline_passes=False,
        per_seed=[True, True, True],
    )
    data = json.loads(rec.save(tmp_path).read_text())
    c = data["claims"]["rate"]
    assert c["verdict"] == "confirmed" and c["evidence"] == {"slope": -0.51}
    assert c["criterion"].startswith("fitted slope") and c["baseline_passes"] is False
    rows = ledger(tmp_path)
    assert [(r["notebook"], r["key"], r["verdict"], r["passes"]) for r in rows] == [
        ("demo", "rate", "confirmed", "3/3")
    ]


def test_a_criterion_the_baseline_passes_cannot_confirm():
    rec = Record("demo", "smoke")
    rec.declare([_claim()])
    with pytest.raises(ValueError, match="baseline"):
        rec.verdict("rate", "confirmed", evidence={}, baseline_passes=True)
    # the honest outcome is still recordable
    assert (
        rec.verdict("rate", "inconclusive", evidence={}, baseline_passes=True)
        == "inconclusive"
    )


def test_undeclared_unjudged_and_unknown_verdicts_are_refused(tmp_path):
    rec = Record("demo", "smoke")
    with pytest.raises(ValueError, match="not declared"):
        rec.verdict("rate", "confirmed", evidence={}, baseline_passes=False)
    rec.declare([_claim()])
    with pytest.raises(ValueError, match="declared twice"):
        rec.declare([_claim()])
    with pytest.raises(ValueError, match="verdict must be one of"):
        rec.verdict("rate", "mostly", evidence={}, baseline_passes=False)
    with pytest.raises(ValueError, match="without a verdict"):
        rec.save(tmp_path)
    with pytest.raises(ValueError, match="criterion"):
        Claim("x", paper="p", statement="s", criterion=" ")


def test_ledger_page_and_rejudge_section(tmp_path):
    from diffctrl_book.ledger import ledger_page, ledger_text, rejudge_section

    claim = Claim(
        "acf",
        paper="cao2026",
        where="Sec. 5.1",
        statement="acf | matches",
        criterion="|acf1 - phi| < 0.05 for 2 of 3 seeds",
        baseline="untrained net",
    )
    for folder, seed, outcome in (
        (tmp_path / "book", 0, [True, True, True]),
        (tmp_path / "again", 7, [True, False, False]),
    ):
        rec = Record("seq", "full", seed=seed)
        rec.declare([claim])
        rec.verdict(
            "acf",
            count_verdict(outcome, need=2 / 3),
            evidence={"acf1": 0.61},
            per_seed=outcome,
            baseline_passes=False,
        )
        rec.save(folder)
    (tmp_path / "book" / "notes.json").write_text("[1, 2]")  # not a record: skipped
    rows = ledger(tmp_path / "book", order=["seq"])
    page = ledger_page(rows, bib_keys={"cao2026"})
    table = [ln for ln in page.splitlines() if ln.startswith("| {cite")]
    assert table == [
        "| {cite:t}`cao2026`, Sec. 5.1 | acf \\| matches | {doc}`/notebooks/seq` "
        "| \\|acf1 - phi\\| < 0.05 for 2 of 3 seeds | **confirmed** | 3/3 "
        "| untrained net: fails |"
    ]
    assert "`cao2026`" in ledger_page(rows, bib_keys=set())  # unknown key: not cited
    again = rejudge_section(ledger(tmp_path / "again"), rows)
    assert "| 7 | **inconclusive** | 1/3 | confirmed | **no** |" in again
    assert "1 confirmed" in ledger_text(rows)


def test_verdict_table_has_markdown_and_html_forms():
    from diffctrl.repro.claims import VerdictTable

    claims = {
        "r": {
            "statement": "error falls as $n^{-1/2}$ <fast>",
            "criterion": "a | b",
            "verdict": "confirmed",
            "per_seed": [True, True, False],
        }
    }
    t = VerdictTable(claims)
    md = t._repr_markdown_()
    assert (
        md.splitlines()[2]
        == "| error falls as $n^{-1/2}$ <fast> | a \\| b | **confirmed** | 2/3 |"
    )
    h = t._repr_html_()
    assert "\\(n^{-1/2}\\)" in h and "&lt;fast&gt;" in h and "<td>2/3</td>" in h
    assert h.count("<tr>") == 2
