"""The ScoreFusion digits page's record (any profile): the design and what bounds its numbers."""

import pytest

from diffctrl.repro import VERDICTS


@pytest.fixture(scope="module")
def rec(notebook_results):
    return notebook_results("score_fusion_digits")


def test_the_papers_design(rec):
    p = rec["params"]
    assert p["aux_shares"] == [0.1, 0.3, 0.7, 0.9]  # the public code's four auxiliaries
    assert p["share"] == 0.6 and rec["values"]["dig_target_share"] == 0.6
    assert len(p["sizes"]) >= 2


def test_label_laws_are_total_variations(rec):
    v = rec["values"]
    assert v["classifier_accuracy"] > 0.9
    for key in ("dig_tv_fused_smallest", "dig_tv_scratch_smallest", "dig_tv_uniform",
                "dig_tv_control"):  # fmt: skip
        assert 0.0 <= v[key] <= 1.0, key
    # each share has standard error sqrt(0.6 * 0.4 / n_gen)
    assert v["dig_share_se"] == pytest.approx((0.24 / rec["params"]["n_gen"]) ** 0.5)


def test_verdict(rec):
    c = rec["claims"]
    assert set(c) == {"digits_shares"}
    assert c["digits_shares"]["verdict"] in VERDICTS
