"""`diffctrl-book sync` on a copy of the repository with two real notebooks: the Colab cells
install diffctrl with exactly the extras each notebook imports (never the build tool), from the
declared repository and ref; the last cell is the "Re-run this page" box; _config.yml's
repository block follows; jupytext writes the twins; a second sync is a no-op."""

import shutil
from pathlib import Path

import jupytext
import pytest
import yaml

from diffctrl_book import deps, sync

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("pift_convergence", "benchmarks")


@pytest.fixture
def repo(tmp_path):
    for name in ("pyproject.toml", "_config.yml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(
        ROOT / "lib",
        tmp_path / "lib",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    (tmp_path / "notebooks").mkdir()
    for name in NAMES:
        shutil.copy2(ROOT / "notebooks" / f"{name}.md", tmp_path / "notebooks")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n"
        + "".join(f"  - file: notebooks/{n}\n" for n in NAMES)
    )
    text = (tmp_path / "pyproject.toml").read_text()
    text = text.replace('ref = "v0.1.0"', 'ref = "abc1234"').replace(
        "https://github.com/diffctrl/diffctrl-book", "https://github.com/someone/book"
    )
    (tmp_path / "pyproject.toml").write_text(text)
    return tmp_path


def test_sync_generates_colab_cells_rerun_boxes_and_config(repo):
    config_before = (repo / "_config.yml").read_text()
    written = sync.sync_all(repo)
    assert repo / "_config.yml" in written
    assert {p.name for p in written} >= {f"{n}.md" for n in NAMES} | {
        f"{n}.ipynb" for n in NAMES
    }
    assert sync.declared(repo) == sync.Declared(
        "https://github.com/someone/book", "abc1234"
    )

    config = yaml.safe_load((repo / "_config.yml").read_text())
    assert config["repository"]["url"] == "https://github.com/someone/book"
    assert config["repository"]["branch"] == "abc1234"
    # everything but the repository block is left as it was
    after = (repo / "_config.yml").read_text()
    assert sync._CONFIG_BLOCK.sub("", after) == sync._CONFIG_BLOCK.sub(
        "", config_before
    )
    assert "sphinx:" in after and after.count("repository:") == 1

    for name in NAMES:
        source = repo / "notebooks" / f"{name}.md"
        nb = jupytext.read(source)
        code = [c for c in nb.cells if c.cell_type == "code"]
        extras = deps.notebook_extras(repo, source)
        pkg = f"diffctrl[{','.join(extras)}]" if extras else "diffctrl"
        assert (
            f'"{pkg} @ git+https://github.com/someone/book@abc1234"' in code[0].source
        )
        assert code[0].metadata["tags"] == ["remove-cell"]
        assert sum("google.colab" in c.source for c in code) == 1
        # it installs that one spec (diffctrl from the root pyproject), never the build tool
        assert code[0].source.count("spec = ") == 1
        assert '"pip", "install", "-q", spec]' in code[0].source
        assert "lib/diffctrl_book" not in code[0].source
        last = nb.cells[-1]
        assert last.cell_type == "markdown" and "Re-run this page" in last.source
        assert f"execute --only {name} --set seed=7 --out _build/scratch" in last.source
        assert (
            f"colab.research.google.com/github/someone/book/blob/abc1234/notebooks/"
            f"{name}.ipynb"
        ) in last.source
        assert (
            f"mybinder.org/v2/gh/someone/book/abc1234?urlpath=tree/notebooks/{name}.ipynb"
            in last.source
        )
        assert nb.cells[-2].cell_type == "code"  # rec.save() / environment(dev) stays
    assert deps.notebook_extras(repo, repo / "notebooks" / "benchmarks.md") == ["large"]
    assert deps.notebook_extras(repo, repo / "notebooks" / "pift_convergence.md") == []
    for name in NAMES:  # jupytext's twin: the source's cells, no outputs
        twin = jupytext.read(repo / "notebooks" / f"{name}.ipynb")
        source = jupytext.read(repo / "notebooks" / f"{name}.md")
        assert [c.source for c in twin.cells] == [c.source for c in source.cells]
        assert not any(c.get("outputs") for c in twin.cells)
        assert twin.metadata["jupytext"]["formats"] == "ipynb,md:myst"
    # idempotent: a second sync changes nothing
    assert sync.sync_all(repo) == []


def test_declared_place_is_validated(repo):
    text = (repo / "pyproject.toml").read_text()
    (repo / "pyproject.toml").write_text(
        text.replace("https://github.com/someone/book", "github.com/someone")
    )
    with pytest.raises(ValueError, match="repository must be"):
        sync.declared(repo)


def test_sync_keeps_one_generated_comment_in_the_config(repo):
    config = repo / "_config.yml"
    comment = sync.config_block(repo).splitlines(True)[0]
    text = config.read_text()
    block = sync._CONFIG_BLOCK.search(text).group(0)
    # what an earlier sync left: the comment repeated above the block
    config.write_text(text.replace(block, comment * 3 + block))
    assert sync.sync_config(repo)
    after = config.read_text()
    assert after.count("# Generated by `diffctrl-book sync`") == 1
    assert not sync.sync_config(repo)


def test_a_drifted_twin_is_rewritten_by_jupytext(repo):
    source = repo / "notebooks" / "benchmarks.md"
    sync.sync_all(repo)
    source.write_text(source.read_text().replace("# ", "# Edited: ", 1))
    assert sync.write_twins(repo) == [repo / "notebooks" / "benchmarks.ipynb"]
    twin = jupytext.read(repo / "notebooks" / "benchmarks.ipynb")
    assert twin.cells[0].source.startswith("# Edited: ")
    assert sync.write_twins(repo) == []


def test_sync_puts_the_colab_cell_right_after_the_title(repo):
    source = repo / "notebooks" / "pift_convergence.md"
    sync.sync_all(repo)
    synced = source.read_text()
    cell = sync.colab_cell(repo, source)
    # moved below "What this reproduces" by hand: sync moves it back
    moved = synced.replace(cell, "", 1).replace(
        "## What this reproduces", "## What this reproduces\n\n" + cell, 1
    )
    assert moved != synced
    source.write_text(moved)
    assert sync.sync_source(repo, source)
    assert source.read_text() == synced
    # a source without one gets it after the title
    source.write_text(synced.replace(cell, "", 1))
    assert sync.sync_source(repo, source)
    assert source.read_text() == synced
    nb = jupytext.read(source)
    assert nb.cells[0].source.startswith("# ") and "google.colab" in nb.cells[1].source
