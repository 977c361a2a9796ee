"""The rendered book as a reader sees it: launch buttons, pasted numbers, figures and math."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from diffctrl import pipeline

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = list(pipeline.book_notebooks(ROOT))
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _launch_links(html: str) -> list[str]:
    return re.findall(r'href="(https://(?:colab\.research\.google\.com|mybinder\.org)[^"]+)"', html)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_launch_buttons_point_at_committed_twins(built_html, name):
    html = (built_html / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
    links = _launch_links(html)
    kinds = {urlparse(u).netloc for u in links}
    assert {"colab.research.google.com", "mybinder.org"} <= kinds, links
    repo = urlparse(yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]).path
    for url in links:
        u = urlparse(url)
        if u.netloc == "mybinder.org":
            path = u.query.split("urlpath=tree/", 1)[1]
        else:
            path = u.path.split(f"{repo}/blob/main/", 1)[1]
        assert (ROOT / path).is_file(), f"launch link {url} -> {path} is not in the repository"
        assert path == f"notebooks/{name}.ipynb"


def test_no_unresolved_glue_or_raw_errors(built_html):
    for page in built_html.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "Traceback (most recent call last)" not in text, page
        assert "glue_ref" not in text, page


def _browser() -> str | None:
    for name in BROWSERS:
        if shutil.which(name):
            return shutil.which(name)
    return None


def _render(browser: str, page: Path, shot: Path) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--virtual-time-budget=15000", "--window-size=1280,2000"]
    with tempfile.TemporaryDirectory() as profile:
        flags.append(f"--user-data-dir={profile}")
        dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                             text=True, timeout=120).stdout
        subprocess.run([browser, *flags, f"--screenshot={shot}", page.as_uri()],
                       capture_output=True, timeout=120)
    return dom


@pytest.mark.parametrize("page", ["book/intro.html", "notebooks/preliminaries.html"])
def test_page_shows_typeset_math_and_figures(built_html, page):
    browser = _browser()
    if browser is None:
        msg = "no chromium/google-chrome on this machine (apt-get install chromium)"
        if os.environ.get("DIFFCTRL_REQUIRE_BROWSER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    shots = built_html.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    shot = shots / (page.replace("/", "_").replace(".html", ".png"))
    dom = _render(browser, built_html / page, shot)
    # MathJax (served offline from _static) replaced the TeX source by typeset output
    assert dom.count("<mjx-container") >= 1, "math was not typeset"
    # every content image resolves to a real PNG/SVG file of non-trivial size
    srcs = [s for s in re.findall(r'<img[^>]+src="([^"]+)"', dom) if "_images/" in s]
    assert srcs, "no figure on the page"
    for src in srcs:
        f = (built_html / page).parent / src
        assert f.is_file() and f.stat().st_size > 2000, f
    assert shot.is_file() and shot.stat().st_size > 10_000, "no screenshot"
