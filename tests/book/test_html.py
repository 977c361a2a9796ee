"""The rendered book as a reader sees it: launch buttons, pasted numbers, figures (each once
per page) and math, the layout of the notebook pages, and nothing of the building machine on
any page."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from bs4 import BeautifulSoup

from diffctrl_book import booktree

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = list(booktree.book_notebooks(ROOT, warn_untracked=False))
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _launch_links(html: str) -> list[str]:
    return re.findall(
        r'href="(https://(?:colab\.research\.google\.com|mybinder\.org)[^"]+)"', html
    )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_launch_buttons_point_at_committed_twins(built_html, name):
    html = (built_html / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
    links = _launch_links(html)
    kinds = {urlparse(u).netloc for u in links}
    assert {"colab.research.google.com", "mybinder.org"} <= kinds, links
    repo = urlparse(
        yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    ).path
    for url in links:
        u = urlparse(url)
        if u.netloc == "mybinder.org":
            path = u.query.split("urlpath=tree/", 1)[1]
        else:
            path = u.path.split(f"{repo}/blob/", 1)[1].split("/", 1)[1]  # after the ref
        assert (ROOT / path).is_file(), (
            f"launch link {url} -> {path} is not in the repository"
        )
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
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--virtual-time-budget=15000",
        "--window-size=1280,2000",
    ]
    with tempfile.TemporaryDirectory() as profile:
        flags.append(f"--user-data-dir={profile}")
        dom = subprocess.run(
            [browser, *flags, "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        subprocess.run(
            [browser, *flags, f"--screenshot={shot}", page.as_uri()],
            capture_output=True,
            timeout=120,
        )
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


# --------------------------------------------------------------------------- every page
def _pages(built_html: Path) -> list[Path]:
    """Every rendered page of the book (not the theme's search and index pages)."""
    skip = {"search.html", "genindex.html", "py-modindex.html"}
    return sorted(
        p
        for p in built_html.rglob("*.html")
        if p.name not in skip and not {"_static", "_sources"} & set(p.parts)
    )


def _soup(page: Path) -> BeautifulSoup:
    return BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")


def _article(soup: BeautifulSoup):
    return soup.find("article") or soup.find("main") or soup


def _reader_text(soup: BeautifulSoup) -> str:
    """What a reader reads on the page: prose and cell outputs, without code cell inputs."""
    body = BeautifulSoup(str(_article(soup)), "html.parser")
    for node in body.select("div.cell_input, script, style"):
        node.decompose()
    return body.get_text(" ")


WARNING = re.compile(r"\b[A-Z]\w*Warning: ")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|\w+Error\s+Traceback")
PROGRESS = re.compile(
    r"\d+%\|[^|\n]{0,80}\|\s*\d+/\d+|\[\d+:\d\d<[\d:?]+|\d(?:it/s|s/it)\]"
)
HEADING_NUMBERED_TWICE = re.compile(r"^\d+(\.\d+)*\.\s+\d+\.")


def _machine_paths() -> list[str]:
    """Paths that only exist on the machine that built the book."""
    paths = {str(ROOT), sys.prefix, str(Path.home()), tempfile.gettempdir() + "/"}
    return sorted(p for p in paths if len(p) > 4) + ["site-packages", "/.venv/"]


def test_no_warning_traceback_progress_bar_or_machine_path_on_any_page(built_html):
    """Issue 20, item 2: every page of the published book is free of the building's debris."""
    problems = []
    machine = _machine_paths()
    for page in _pages(built_html):
        soup = _soup(page)
        text = _reader_text(soup)
        rel = page.relative_to(built_html)
        if soup.select("div.output.stderr, div.stderr"):
            problems.append(f"{rel}: a stderr output block")
        for name, pattern in (
            ("warning", WARNING),
            ("traceback", TRACEBACK),
            ("progress-bar frame", PROGRESS),
        ):
            m = pattern.search(text)
            if m:
                problems.append(
                    f"{rel}: {name} {text[max(m.start() - 40, 0) : m.end() + 40]!r}"
                )
        html = page.read_text(encoding="utf-8")
        for path in machine:
            if path in html:
                i = html.index(path)
                problems.append(
                    f"{rel}: path of the building machine {html[i - 40 : i + 60]!r}"
                )
    assert not problems, "\n".join(problems)


def test_no_heading_is_numbered_twice(built_html):
    """Issue 18, item 2: Jupyter Book numbers sections; a hand-typed number doubles it."""
    bad = []
    for page in _pages(built_html):
        for h in _article(_soup(page)).find_all(["h1", "h2", "h3", "h4", "h5", "h6"]):
            title = " ".join(h.get_text(" ").replace("#", " ").split())
            if HEADING_NUMBERED_TWICE.match(title):
                bad.append(f"{page.relative_to(built_html)}: {title!r}")
    assert not bad, "\n".join(bad)


def test_no_title_carries_math(built_html):
    """Issue 18, item 6: the sidebar repeats every title on every page, also on pages without
    math, where MathJax is not loaded and would leave raw TeX; so no title carries math."""
    bad = []
    for page in _pages(built_html):
        soup = _soup(page)
        titles = list(_article(soup).find_all(["h1", "h2", "h3", "h4", "h5", "h6"]))
        titles += soup.select("nav a.reference, .bd-sidebar a, .bd-toc a")
        for t in titles:
            if t.select(".math, mjx-container") or re.search(
                r"\\[(\[]|\$", t.get_text()
            ):
                bad.append(
                    f"{page.relative_to(built_html)}: {t.get_text(' ').strip()!r}"
                )
    assert not bad, "\n".join(sorted(set(bad)))


def _visible_code_cells(article) -> list:
    """Code cells whose input a reader sees without unfolding anything."""
    cells = []
    for cell in article.select("div.cell"):
        classes = set(cell.get("class", []))
        if {"tag_remove-input", "tag_hide-input", "tag_remove-cell"} & classes:
            continue
        if cell.select_one("div.cell_input") is not None:
            cells.append(cell)
    return cells


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_page_opens_with_narrative_and_folds_the_set_up(built_html, name):
    """Issue 18, items 1 and 5: title and 'what this reproduces' first, then the parameters;
    papermill's injected parameters are not shown; the set-up cell is folded."""
    article = _article(_soup(built_html / "notebooks" / f"{name}.html"))
    cells = article.select("div.cell")
    assert cells, "no code cell on a notebook page"
    first_p = next(
        (
            p
            for p in article.find_all("p")
            if p.find_parent("div", class_="cell") is None and p.get_text(strip=True)
        ),
        None,
    )
    assert first_p is not None, "no paragraph of prose on the page"
    visible = _visible_code_cells(article)
    assert visible, "no visible code cell"
    order = {id(n): i for i, n in enumerate(article.find_all(True))}
    assert order[id(first_p)] < order[id(visible[0])], (
        "a code cell comes before the first paragraph: " + visible[0].get_text()[:120]
    )
    for cell in visible:
        code = cell.select_one("div.cell_input").get_text()
        assert not code.lstrip().startswith("# Parameters"), (
            "papermill's injected cell is visible"
        )
        assert "injected-parameters" not in cell.get("class", [])
        assert "PROFILES = " not in code, "the set-up cell (PROFILES) is not folded"


def repeated_images(page: Path, article) -> tuple[int, int, list[str]]:
    """(images, distinct images, the sources of those shown more than once) of an article.
    Two images are the same when the files they show have the same bytes (SHA-256), or the
    same ``data:`` URI; a missing file counts by its source."""
    shown = []
    for img in article.find_all("img"):
        src = img.get("src", "")
        target = page.parent / src.split("#", 1)[0].split("?", 1)[0]
        if src.startswith("data:"):
            key = hashlib.sha256(src.encode()).hexdigest()
        elif target.is_file():
            key = hashlib.sha256(target.read_bytes()).hexdigest()
        else:
            key = src
        shown.append((key, src))
    counts = {}
    for key, _ in shown:
        counts[key] = counts.get(key, 0) + 1
    repeats = sorted({src for key, src in shown if counts[key] > 1})
    return len(shown), len(counts), repeats


def test_every_figure_appears_once_per_page(built_html):
    """Issue 24, item 3: a figure glued with its caption is not shown again as its cell's
    output: every page shows as many images as it has distinct ones."""
    bad = []
    for page in _pages(built_html):
        n, distinct, repeats = repeated_images(page, _article(_soup(page)))
        if n != distinct:
            bad.append(
                f"{page.relative_to(built_html)}: {n} images, {distinct} distinct; "
                f"shown more than once: {repeats}"
            )
    assert not bad, "\n".join(bad)


def test_the_image_count_sees_a_repeat_under_another_name(tmp_path):
    (tmp_path / "_images").mkdir()
    for name, data in (
        ("a.png", b"figure one"),
        ("b.png", b"figure one"),
        ("c.png", b"2"),
    ):
        (tmp_path / "_images" / name).write_bytes(data)
    html = (
        '<article><img src="_images/a.png"><p>caption</p><img src="_images/c.png">'
        '<img src="_images/b.png"><img src="data:image/png;base64,AAAA"></article>'
    )
    page = tmp_path / "page.html"
    article = BeautifulSoup(html, "html.parser").find("article")
    assert repeated_images(page, article) == (4, 3, ["_images/a.png", "_images/b.png"])
    once = BeautifulSoup(html.replace('<img src="_images/b.png">', ""), "html.parser")
    assert repeated_images(page, once.find("article")) == (3, 3, [])


def _render_all(browser: str, pages: list[Path]) -> dict[Path, str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=15000",
    ]

    def dump(page: Path) -> str:
        with tempfile.TemporaryDirectory() as profile:
            return subprocess.run(
                [
                    browser,
                    *flags,
                    f"--user-data-dir={profile}",
                    "--dump-dom",
                    page.as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=180,
            ).stdout

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(pages, pool.map(dump, pages)))


def test_no_page_shows_untypeset_math(built_html):
    """Issue 18, item 6: after MathJax ran, no page (sidebar included) shows raw \\( or \\[."""
    browser = _browser()
    if browser is None:
        msg = "no chromium/google-chrome on this machine (apt-get install chromium)"
        if os.environ.get("DIFFCTRL_REQUIRE_BROWSER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    bad = []
    for page, dom in _render_all(browser, _pages(built_html)).items():
        assert dom, f"{page}: the browser rendered nothing"
        soup = BeautifulSoup(dom, "html.parser")
        for node in soup.select(
            "pre, code, script, style, div.cell_input, mjx-assistive-mml"
        ):
            node.decompose()
        text = soup.get_text(" ")
        m = re.search(r"\\[(\[]", text)
        if m:
            context = text[max(m.start() - 60, 0) : m.end() + 60]
            bad.append(f"{page.relative_to(built_html)}: {context!r}")
    assert not bad, "\n".join(bad)
