"""Claims and verdicts: declared first (whose claim, baseline, positive control), computed by
fixed rules, refused when they cannot decide; the ledger, report card and page tables."""

import json

import numpy as np
import pytest

from diffctrl.repro import (
    Claim,
    Diagnosis,
    Judgement,
    Outcome,
    Record,
    claims_table,
    count_verdict,
    findings_sentence,
    judge,
)
from diffctrl.repro.tables import VerdictTable
from diffctrl_book.ledger import (
    bib_titles,
    ledger,
    ledger_page,
    ledger_text,
    rejudge_section,
    report_card,
)


def _claim(key="rate", **kw):
    args = dict(
        paper="han2024score",
        where="Thm 3.1",
        statement="error falls as n^-1/2",
        criterion="fitted slope within [-0.6, -0.4]",
        baseline="zero iterations",
        control="the exact score",
    )
    args.update(kw)
    return Claim(key, **args)


def test_count_verdict_rules():
    assert count_verdict([True, True, True]) == "confirmed"
    assert count_verdict([True, True, False]) == "confirmed with caveat"
    assert count_verdict([True, False, False, False]) == "inconclusive"
    assert count_verdict([False, False]) == "not reproduced"
    assert count_verdict([True, True, False], need=2 / 3) == "confirmed"
    with pytest.raises(ValueError, match="passes"):
        count_verdict([])


def test_judge_baseline_rules():
    j = judge([True, True, True], False)
    assert (j.verdict, j.baseline_passes, j.why) == ("confirmed", False, "")
    assert judge([True, True, False], False).verdict == "confirmed with caveat"
    # the baseline passes: a positive verdict decides nothing, and says so
    j = judge([True, True, True], True)
    assert (j.verdict, j.why) == ("inconclusive", "baseline passes")
    # a negative verdict stays negative although the baseline passes
    assert judge([False, False, False], True).verdict == "not reproduced"
    j = judge([True, False, False, False], True)
    assert (j.verdict, j.why) == ("inconclusive", "mixed")
    # per-seed baseline outcomes are counted by the same rule (1 of 3: not positive)
    assert judge([True, True, True], [True, False, False]).verdict == "confirmed"
    assert judge([True, True, True], [True, True, False]).why == "baseline passes"
    assert judge([True, True], None).baseline_passes is None
    with pytest.raises(TypeError, match="baseline"):
        judge([True], "yes")


def test_judge_control_rules():
    # a miss whose control misses too says nothing about the paper
    j = judge([False, False, False], False, control=[False, False, False])
    assert (j.verdict, j.why, j.control_passes) == (
        "inconclusive",
        "control fails",
        False,
    )
    j = judge([True, False, False], False, control=False)
    assert (j.verdict, j.why) == ("inconclusive", "control fails")
    # a miss whose control passes stands
    j = judge([False, False], False, control=True)
    assert (j.verdict, j.control_passes) == ("not reproduced", True)
    # the method passes but the control fails: the criterion or the control is wrong
    with pytest.raises(ValueError, match="control"):
        judge([True, True], False, control=False)
    # numpy bools are outcomes too
    assert (
        judge(np.array([True, True]), np.bool_(False), np.bool_(True)).verdict
        == "confirmed"
    )


def test_claim_declares_whose_and_why_none():
    with pytest.raises(ValueError, match="locate"):
        _claim(where="")
    assert _claim(where="", kind="ours").kind == "ours"
    with pytest.raises(ValueError, match="kind"):
        _claim(kind="mine")
    with pytest.raises(ValueError, match="not both"):
        _claim(no_control="none exists")
    with pytest.raises(ValueError, match="criterion"):
        _claim(criterion=" ")
    with pytest.raises(ValueError, match="cause"):
        Diagnosis("bad luck", "x")
    with pytest.raises(ValueError, match="detail"):
        Diagnosis("setting", " ")


def test_record_keeps_judgement_control_and_diagnosis(tmp_path):
    rec = Record("demo", "smoke")
    rec.declare([_claim(), _claim("other")])
    j = judge([False, False, False], False, control=[False, False, False])
    d = Diagnosis("underpowered", "n = 100 cannot resolve a slope; n = 10^4 would")
    assert (
        rec.verdict("rate", j, evidence={"slope": -0.2}, diagnosis=d) == "inconclusive"
    )
    rec.record(
        Outcome(
            {"slope": -0.2},
            verdicts={
                "other": dict(
                    verdict=judge([True, True], [False, False], [True, True]),
                    evidence={},
                )
            },
        )
    )
    data = json.loads(rec.save(tmp_path).read_text())
    c = data["claims"]["rate"]
    assert (c["verdict"], c["why"], c["control_passes"], c["baseline_passes"]) == (
        "inconclusive",
        "control fails",
        False,
        False,
    )
    assert c["diagnosis"] == {"cause": "underpowered", "detail": d.detail}
    assert c["per_seed"] == [False, False, False] and data["values"] == {"slope": -0.2}
    assert data["claims"]["other"]["verdict"] == "confirmed"
    row = ledger(tmp_path)[0]
    assert (row["why"], row["control_passes"], row["passes"]) == (
        "control fails",
        False,
        "0/3",
    )


def test_record_refuses_verdicts_that_cannot_decide():
    rec = Record("demo", "smoke")
    with pytest.raises(ValueError, match="not declared"):
        rec.verdict("rate", "confirmed", evidence={})
    rec.declare(
        [
            _claim(),
            _claim(
                "bare",
                baseline="",
                control="",
                no_baseline="an identity",
                no_control="an identity",
            ),
        ]
    )
    with pytest.raises(ValueError, match="declared twice"):
        rec.declare([_claim()])
    with pytest.raises(ValueError, match="baseline"):
        rec.verdict("rate", "confirmed", evidence={}, baseline_passes=True)
    with pytest.raises(ValueError, match="control"):
        rec.verdict(
            "rate",
            "confirmed",
            evidence={},
            baseline_passes=False,
            control_passes=False,
        )
    with pytest.raises(ValueError, match="declares no control"):
        rec.verdict("bare", "confirmed", evidence={}, control_passes=True)
    with pytest.raises(ValueError, match="verdict must be one of"):
        rec.verdict("rate", "mostly", evidence={})
    with pytest.raises(ValueError, match="not a plain"):
        rec.verdict(
            "rate", "confirmed", evidence={}, diagnosis=Diagnosis("setting", "x")
        )
    with pytest.raises(TypeError, match="Diagnosis"):
        rec.verdict("rate", "not reproduced", evidence={}, diagnosis="it failed")
    # the honest outcome is still recordable
    assert (
        rec.verdict(
            "rate",
            "inconclusive",
            evidence={},
            baseline_passes=True,
            why="baseline passes",
        )
        == "inconclusive"
    )


def test_save_refuses_unjudged_claims(tmp_path):
    rec = Record("demo", "smoke")
    rec.declare([_claim()])
    with pytest.raises(ValueError, match="without a verdict"):
        rec.save(tmp_path)


def test_save_refuses_claims_without_control_or_diagnosis(tmp_path):
    """A claim declares a baseline and a control, or why it has none; a negative verdict
    says why (its diagnosis): the record refuses to be written otherwise."""
    rec = Record("demo", "smoke")
    rec.declare([_claim(control="")])
    rec.verdict("rate", judge([True], False), evidence={})
    with pytest.raises(ValueError, match="neither a control"):
        rec.save(tmp_path)
    rec = Record("demo", "smoke")
    rec.declare([_claim(control="", no_control="the exact score is the reference")])
    rec.verdict("rate", judge([False], False), evidence={})
    with pytest.raises(ValueError, match="without a diagnosis"):
        rec.save(tmp_path)
    rec = Record("demo", "smoke")
    rec.declare([_claim()])
    rec.verdict(
        "rate",
        judge([False], False, True),
        evidence={},
        diagnosis=Diagnosis("setting", "x"),
    )
    assert rec.save(tmp_path).exists()


def _judged():
    return {
        "a": dict(_claim("a").as_dict(), verdict="confirmed", per_seed=[True, True]),
        "b": dict(
            _claim("b").as_dict(),
            verdict="not reproduced",
            per_seed=[False] * 3,
            diagnosis={"cause": "setting", "detail": "T = 10, not 1000"},
        ),
        "c": dict(
            _claim("c", kind="check").as_dict(), verdict="confirmed", per_seed=None
        ),
        "d": dict(
            _claim("d", kind="ours", statement="ours | too").as_dict(),
            verdict="inconclusive",
            why="baseline passes",
            per_seed=[True],
        ),
    }


def test_page_tables_put_the_verdict_first_and_checks_last():
    md = VerdictTable(_judged())._repr_markdown_().splitlines()
    assert md[0].startswith("| verdict | claim |")
    assert md[2] == "| **confirmed** | error falls as n^-1/2 | the paper's | 2/2 | — |"
    assert md[3].endswith(
        "| 0/3 | our setting differs from the paper's: T = 10, not 1000 |"
    )
    assert md[4].startswith("| **inconclusive** | ours \\| too | ours |")
    assert md[5].startswith("| **check passes** |")
    h = VerdictTable(
        {"r": dict(_judged()["a"], statement="$n^{-1/2}$ <x>")}
    )._repr_html_()
    assert "\\(n^{-1/2}\\)" in h and "&lt;x&gt;" in h and h.count("<tr>") == 2
    ct = (
        claims_table(
            [
                _claim("x", kind="check", baseline="", no_baseline="an identity"),
                _claim(),
            ]
        )
        ._repr_markdown_()
        .splitlines()
    )
    assert ct[0] == (
        "| claim | whose | criterion | baseline (must fail) | control (must pass) |"
    )
    assert ct[2].startswith("| error falls as n^-1/2 (Thm 3.1) | the paper's |")
    assert "none: an identity" in ct[3] and "check of our code" in ct[3]


def test_findings_sentence_counts_by_whose_claim():
    s = findings_sentence(_judged())
    assert s == (
        "Of the paper's 2 claims: 1 confirmed, 1 not reproduced (our setting "
        "differs from the paper's); of our 1 hypothesis: 1 inconclusive (the baseline "
        "passes the criterion too); 1 of 1 check of our code pass."
    )


def _write(folder, seed, outcome):
    rec = Record("seq", "full", seed=seed)
    rec.declare(
        [
            _claim("acf", paper="cao2026", statement="acf | matches"),
            _claim(
                "ident",
                paper="cao2026",
                kind="check",
                baseline="",
                no_baseline="an identity",
            ),
        ]
    )
    rec.verdict(
        "acf",
        judge(outcome, False, [True] * 3, need=2 / 3),
        evidence={"acf1": 0.6},
        diagnosis=None
        if count_verdict(outcome, 2 / 3) == "confirmed"
        else Diagnosis("underpowered", "3 seeds"),
    )
    rec.verdict("ident", "confirmed", evidence={}, control_passes=True)
    rec.save(folder)


def test_ledger_page_report_card_and_rejudge_section(tmp_path):
    _write(tmp_path / "book", 0, [True, True, True])
    _write(tmp_path / "again", 7, [True, False, False])
    (tmp_path / "book" / "notes.json").write_text("[1, 2]")  # not a record: skipped
    rows = ledger(tmp_path / "book", order=["seq"])
    titles = bib_titles(
        "@article{cao2026,\n  title = {Adapted {Diffusion}},\n  year={2026}\n}\n"
    )
    assert titles == {"cao2026": "Adapted Diffusion"}
    page = ledger_page(rows, bib_keys={"cao2026"}, titles=titles)
    assert "(ledger-cao2026)=\n## Adapted Diffusion\n" in page
    assert (
        "| **confirmed** | acf \\| matches (Thm 3.1) | 3/3 | — "
        "| {ref}`seq <seq-verdicts>` |"
    ) in page
    assert ":::{dropdown} Criteria, baselines and positive controls" in page
    assert "control: the exact score (passes)" in page
    assert page.index("## Checks of our implementation") > page.index(
        "## Adapted Diffusion"
    )
    assert "`cao2026`" in ledger_page(rows, bib_keys=set())  # unknown key: not cited
    card = report_card(rows, {"cao2026"}, titles).splitlines()
    assert card[2] == (
        "| {cite:t}`cao2026` ({ref}`ledger <ledger-cao2026>`) "
        "| 1 | 0 | 0 | 0 | {ref}`seq <seq-verdicts>` |"
    )
    assert "1 checks of its implementation" in card[-1]
    again = rejudge_section(ledger(tmp_path / "again"), rows)
    assert (
        "| **inconclusive** | confirmed | **no** | acf \\| matches | 7 | 1/3 |" in again
    )
    text = ledger_text(rows)
    assert text.splitlines()[0].startswith("verdict")
    assert "papers' claims: 1 confirmed" in text and "checks: 1" in text


def test_judgement_is_a_value():
    j = judge([True], False, True)
    assert j == Judgement("confirmed", [True], False, True, "")
    with pytest.raises(ValueError, match="why"):
        Judgement("confirmed", why="because")
