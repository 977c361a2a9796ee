"""The papermill pipeline on a throw-away book: success, failure, atomicity, parameter errors."""

import json
import shutil
from pathlib import Path

import pytest

from diffctrl import pipeline

NOTEBOOK = '''---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Demo

```{code-cell} ipython3
:tags: [parameters]

profile = "full"
overrides = {}
seed = 0
device = "auto"
```

```{code-cell} ipython3
from diffctrl.profiles import select_profile
from diffctrl.results import Record
cfg = select_profile({"smoke": dict(n=2, fail=False), "full": dict(n=5, fail=False)}, profile, overrides)
rec = Record("demo", profile, seed=seed)
rec("total", sum(range(cfg.n)))
if cfg.fail:
    raise RuntimeError("asked to fail")
rec.save();
```
'''


@pytest.fixture
def book(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/demo\n")
    (tmp_path / "_config.yml").write_text("title: t\n")
    (tmp_path / "notebooks" / "demo.md").write_text(NOTEBOOK)
    return tmp_path


def test_execute_writes_notebook_and_record(book):
    out = pipeline.execute_notebook(book, "demo", book / "notebooks" / "demo.md", "smoke")
    assert out == book / "_build" / "executed" / "notebooks" / "demo.ipynb"
    rec = json.loads((book / "_build" / "results" / "demo.json").read_text())
    assert rec["values"]["total"] == 1 and rec["profile"] == "smoke"
    assert pipeline.executed_profiles(book) == {"demo": "smoke"}
    assert not list((book / "_build" / "tmp").iterdir())  # no temp leftovers

    # a failing run removes the stale good outputs and keeps the failed notebook as a report
    with pytest.raises(pipeline.PipelineError, match="asked to fail"):
        pipeline.execute_notebook(book, "demo", book / "notebooks" / "demo.md", "smoke",
                                  overrides={"fail": True})
    assert not out.exists()
    assert not (book / "_build" / "results" / "demo.json").exists()
    assert (book / "_build" / "reports" / "demo.failed.ipynb").exists()
    with pytest.raises(pipeline.PipelineError, match="not executed yet"):
        pipeline.stage_site(book)


def test_unknown_override_fails_inside_the_notebook(book):
    with pytest.raises(pipeline.PipelineError, match=r"unknown parameter\(s\) \['m'\]"):
        pipeline.execute_notebook(book, "demo", book / "notebooks" / "demo.md", "smoke",
                                  overrides={"m": 1})


def test_unknown_profile_and_toc_consistency(book):
    with pytest.raises(pipeline.PipelineError, match="unknown profile 'tiny'"):
        pipeline.execute_notebook(book, "demo", book / "notebooks" / "demo.md", "tiny")
    (book / "notebooks" / "extra.md").write_text(NOTEBOOK)
    with pytest.raises(pipeline.PipelineError, match=r"not in _toc.yml: \['extra'\]"):
        pipeline.book_notebooks(book)


def test_source_needs_kernelspec_and_parameters(book):
    src = book / "notebooks" / "demo.md"
    src.write_text(NOTEBOOK.replace(":tags: [parameters]\n", ""))
    with pytest.raises(pipeline.PipelineError, match="tagged 'parameters'"):
        pipeline.read_source(src)
    src.write_text(NOTEBOOK.replace("kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n", ""))
    with pytest.raises(pipeline.PipelineError, match="kernelspec"):
        pipeline.read_source(src)


def test_twins_sync_and_drift(book):
    assert pipeline.drifted_twins(book) == ["demo (no twin demo.ipynb)"]
    assert pipeline.sync_twins(book) == [book / "notebooks" / "demo.ipynb"]
    assert pipeline.drifted_twins(book) == []
    src = book / "notebooks" / "demo.md"
    src.write_text(src.read_text().replace("n=2", "n=3"))
    assert pipeline.drifted_twins(book) == ["demo (cells differ)"]


def test_parameter_names():
    import jupytext

    nb = jupytext.reads(NOTEBOOK, fmt="md:myst")
    assert pipeline.parameter_names(nb) == {"profile", "overrides", "seed", "device"}


def test_parallel_execution_writes_every_record(book):
    (book / "notebooks" / "demo2.md").write_text(NOTEBOOK.replace('Record("demo"', 'Record("demo2"'))
    (book / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   "  - file: notebooks/demo\n  - file: notebooks/demo2\n")
    outs = pipeline.execute_all(book, "smoke", jobs=2)
    assert sorted(p.name for p in outs) == ["demo.ipynb", "demo2.ipynb"]
    for name in ("demo", "demo2"):
        assert json.loads((book / "_build" / "results" / f"{name}.json").read_text())["values"]["total"] == 1
    with pytest.raises(pipeline.PipelineError, match="jobs must be >= 1"):
        pipeline.execute_all(book, "smoke", jobs=0)
