import pytest

from diffctrl.repro import select_profile

PROFILES = {"smoke": {"n": 10, "lr": 0.1}, "full": {"n": 1000, "lr": 0.1}}


def test_select_and_override():
    cfg = select_profile(PROFILES, "smoke", {"lr": 0.5})
    assert (cfg.n, cfg["lr"], cfg.profile) == (10, 0.5, "smoke")
    assert cfg.as_dict() == {"n": 10, "lr": 0.5}
    assert select_profile(PROFILES, "full").n == 1000


def test_unknown_profile_is_an_error():
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        select_profile(PROFILES, "fast")


def test_unknown_override_is_an_error():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['nn'\]"):
        select_profile(PROFILES, "smoke", {"nn": 3})


def test_unknown_attribute_names_the_parameter():
    cfg = select_profile(PROFILES, "smoke")
    with pytest.raises(AttributeError, match="no parameter 'steps'"):
        _ = cfg.steps


def test_profiles_must_agree_and_be_complete():
    with pytest.raises(ValueError, match="different parameters"):
        select_profile({"smoke": {"n": 1}, "full": {"n": 2, "m": 3}}, "smoke")
    with pytest.raises(ValueError, match="missing"):
        select_profile({"smoke": {"n": 1}}, "smoke")
