"""Claims and verdicts: declared first, computed, refused when the baseline passes too."""

import json

import pytest

from diffctrl.claims import Claim, count_verdict, ledger
from diffctrl.results import Record


def _claim(key="rate"):
    return Claim(key, paper="han2024score", statement="error falls as n^-1/2",
                 criterion="fitted slope within [-0.6, -0.4]", baseline="zero iterations")


def test_count_verdict_rules():
    assert count_verdict([True, True, True]) == "confirmed"
    assert count_verdict([True, True, False]) == "confirmed with caveat"
    assert count_verdict([True, False, False, False]) == "inconclusive"
    assert count_verdict([False, False]) == "not reproduced"
    assert count_verdict([True, True, False], need=2 / 3) == "confirmed"
    with pytest.raises(ValueError, match="passes"):
        count_verdict([])


def test_record_keeps_claims_and_verdicts(tmp_path):
    rec = Record("demo", "smoke")
    rec.declare([_claim()])
    rec.verdict("rate", "confirmed", evidence={"slope": -0.51}, baseline_passes=False,
                per_seed=[True, True, True])
    data = json.loads(rec.save(tmp_path).read_text())
    c = data["claims"]["rate"]
    assert c["verdict"] == "confirmed" and c["evidence"] == {"slope": -0.51}
    assert c["criterion"].startswith("fitted slope") and c["baseline_passes"] is False
    rows = ledger(tmp_path)
    assert [(r["notebook"], r["key"], r["verdict"], r["passes"]) for r in rows] == [
        ("demo", "rate", "confirmed", "3/3")]


def test_a_criterion_the_baseline_passes_cannot_confirm():
    rec = Record("demo", "smoke")
    rec.declare([_claim()])
    with pytest.raises(ValueError, match="baseline"):
        rec.verdict("rate", "confirmed", evidence={}, baseline_passes=True)
    # the honest outcome is still recordable
    assert rec.verdict("rate", "inconclusive", evidence={}, baseline_passes=True) == "inconclusive"


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
