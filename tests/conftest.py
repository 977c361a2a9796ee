"""Shared fixtures: the results records written by the book command (whichever profile ran)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"


def _require_book() -> bool:
    return os.environ.get("DIFFCTRL_REQUIRE_BOOK", "") == "1"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def notebook_results():
    """``notebook_results(name)`` -> the results record of ``_build/results/<name>.json``.

    The checks hold at every profile (they run on whichever profile's records exist: smoke in
    the README's test command, full after the book command, which runs them before rendering).
    Both commands set DIFFCTRL_REQUIRE_BOOK=1, so there a missing record fails; a bare
    ``pytest`` run without the book skips these tests.
    """

    def load(name: str) -> dict:
        path = BUILD / "results" / f"{name}.json"
        if not path.exists():
            msg = (
                f"no results record {path} (run `diffctrl-book execute "
                "--profile smoke` or `--profile full`)"
            )
            if _require_book():
                pytest.fail(msg)
            pytest.skip(msg)
        return json.loads(path.read_text(encoding="utf-8"))

    return load


@pytest.fixture(scope="session")
def built_html() -> Path:
    html = BUILD / "html"
    if not (html / "index.html").exists():
        msg = "no rendered book under _build/html (run `diffctrl-book build`)"
        if _require_book():
            pytest.fail(msg)
        pytest.skip(msg)
    return html


@pytest.fixture(scope="session")
def check_claims():
    """``check_claims(rec)``: every claim of a results record carries a verdict word, a baseline
    and a control (or why it has none), and a diagnosis when it is short of confirmed."""
    from diffctrl.repro import VERDICTS

    def check(rec: dict) -> None:
        for key, c in rec["claims"].items():
            assert c["verdict"] in VERDICTS, key
            assert c["baseline"] or c["no_baseline"], key
            assert c["control"] or c["no_control"], key
            if c["verdict"] != "confirmed":
                assert c["diagnosis"], key

    return check
