"""The execute and build steps on a throw-away book: success, failure, atomicity, parameter
errors, the execution cache, --out, clean pages, untracked drafts, interrupts, the declared
prerequisite, errors outside a clone."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import diffctrl_book
from diffctrl_book import booktree

NOTEBOOK = """---
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

Demo paragraph.

```{code-cell} ipython3
:tags: [parameters]

profile = "full"
overrides = {}
seed = 0
device = "auto"
```

```{code-cell} ipython3
import os
import sys

from tqdm.auto import tqdm

from diffctrl.repro import Record, select_profile
cfg = select_profile({"smoke": dict(n=2, fail=False), "full": dict(n=5, fail=False)}, profile, overrides)
rec = Record("demo", profile, seed=seed)
rec("total", sum(range(cfg.n)) + seed)
for _ in tqdm(range(3), desc="loop"):
    pass
print("cwd", os.getcwd(), "prefix", sys.prefix, "artifacts", os.environ["DIFFCTRL_ARTIFACTS"])
if cfg.fail:
    raise RuntimeError("asked to fail")
rec.save();
```
"""


@pytest.fixture
def book(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/demo\n"
    )
    (tmp_path / "_config.yml").write_text(
        "title: t\nexecute:\n  execute_notebooks: 'off'\n"
    )
    (tmp_path / "notebooks" / "demo.md").write_text(NOTEBOOK)
    return tmp_path


def _stream_text(nb) -> str:
    return "".join(
        "".join(o.get("text", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )


def test_execute_writes_notebook_and_record(book):
    import nbformat

    out = diffctrl_book.execute_notebook(
        book, "demo", book / "notebooks" / "demo.md", "smoke"
    )
    assert out == book / "_build" / "executed" / "notebooks" / "demo.ipynb"
    record = book / "_build" / "results" / "demo.json"
    rec = json.loads(record.read_text())
    assert rec["values"]["total"] == 1 and rec["profile"] == "smoke"
    assert (
        stat.S_IMODE(record.stat().st_mode) & 0o044 == 0o044
    )  # readable by group and others
    nb = nbformat.read(str(out), as_version=4)
    key = nb.metadata["diffctrl"]["cache_key"]
    assert rec["execution"]["cache_key"] == key and len(key) == 24
    assert set(rec["execution"]["inputs"]) == {
        "source",
        "profile",
        "parameters",
        "diffctrl_code",
        "packages",
    }
    # the injected parameters cell stays, hidden; one provenance line follows it
    injected = [
        c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])
    ]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata["tags"]
    i = nb.cells.index(injected[0])
    assert "`smoke` profile, seed `0`" in nb.cells[i + 1].source
    # the page shows no progress bar, no tqdm warning and no path of this machine
    text = _stream_text(nb)
    assert "cwd . prefix <venv> artifacts <repo>/_build/artifacts" in text, text
    assert "loop" not in text and "Tqdm" not in text and str(book) not in text
    assert diffctrl_book.executed_profiles(book) == {"demo": "smoke"}
    assert not list((book / "_build" / "tmp").iterdir())  # no temp leftovers

    # a failing run removes the stale good outputs and keeps the failed notebook as a report
    with pytest.raises(diffctrl_book.PipelineError, match="asked to fail"):
        diffctrl_book.execute_notebook(
            book,
            "demo",
            book / "notebooks" / "demo.md",
            "smoke",
            overrides={"fail": True},
        )
    assert not out.exists()
    assert not (book / "_build" / "results" / "demo.json").exists()
    assert (book / "_build" / "reports" / "demo.failed.ipynb").exists()
    assert not list((book / "_build" / "tmp").iterdir())
    with pytest.raises(diffctrl_book.PipelineError, match="not executed yet"):
        diffctrl_book.stage_site(book, "smoke")
    # without a required profile the build stages the source without outputs and says so
    site, missing = diffctrl_book.stage_site(book)
    assert missing == ["demo"] and (site / "notebooks" / "demo.ipynb").exists()


def test_cache_reuses_until_an_input_changes(book, capsys):
    src = book / "notebooks" / "demo.md"
    out = book / "_build" / "executed" / "notebooks" / "demo.ipynb"
    diffctrl_book.execute_all(book, "smoke")
    first = out.stat().st_mtime_ns
    capsys.readouterr()
    diffctrl_book.execute_all(book, "smoke")
    assert "unchanged (cache key" in capsys.readouterr().out
    assert out.stat().st_mtime_ns == first
    diffctrl_book.execute_all(book, "smoke", force=True)  # --force re-executes
    assert "ok in" in capsys.readouterr().out
    src.write_text(src.read_text().replace("n=2", "n=3"))  # the source changed
    diffctrl_book.execute_all(book, "smoke")
    assert "ok in" in capsys.readouterr().out
    data = json.loads((book / "_build" / "results" / "demo.json").read_text())
    assert data["values"]["total"] == 3


def test_out_and_seed_leave_the_book_untouched(book):
    scratch = book / "_build" / "scratch"
    outs = diffctrl_book.execute_all(
        book, "smoke", overrides={"seed": 7}, out_dir=scratch
    )
    assert outs == [scratch / "demo.ipynb"]
    data = json.loads((scratch / "demo.json").read_text())
    assert data["seed"] == 7 and data["values"]["total"] == 1 + 7
    assert (
        not (book / "_build" / "executed").exists()
        and not (book / "_build" / "results").exists()
    )
    assert "seed 7" not in diffctrl_book.verdicts(
        book, scratch
    )  # no claims: an empty ledger
    assert "no judged claims" in diffctrl_book.verdicts(book, scratch)


def test_split_sets():
    names = {"profile", "overrides", "seed", "device"}
    assert booktree.split_sets({"seed": 7, "T": 3, "device": "cpu"}, names) == (
        {"seed": 7, "device": "cpu"},
        {"T": 3},
    )


def test_unknown_override_fails_inside_the_notebook(book):
    with pytest.raises(
        diffctrl_book.PipelineError, match=r"unknown parameter\(s\) \['m'\]"
    ):
        diffctrl_book.execute_notebook(
            book, "demo", book / "notebooks" / "demo.md", "smoke", overrides={"m": 1}
        )


def test_interrupted_execution_leaves_no_temp(book, monkeypatch):
    import papermill

    def interrupted(*args, **kwargs):
        assert list(
            (book / "_build" / "tmp").iterdir()
        )  # the temp folder exists meanwhile
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        diffctrl_book.execute_notebook(
            book, "demo", book / "notebooks" / "demo.md", "smoke"
        )
    assert not list((book / "_build" / "tmp").iterdir())


def test_unknown_profile_and_untracked_sources(book, capsys):
    with pytest.raises(diffctrl_book.PipelineError, match="unknown profile 'tiny'"):
        diffctrl_book.execute_notebook(
            book, "demo", book / "notebooks" / "demo.md", "tiny"
        )
    # an untracked draft is skipped with a warning, not an error of every command
    (book / "notebooks" / "extra.md").write_text("# not even a notebook\n")
    assert list(diffctrl_book.book_notebooks(book)) == ["demo"]
    assert "not in _toc.yml are skipped: ['extra']" in capsys.readouterr().err
    # a toc entry without a source stays an error
    (book / "notebooks" / "demo.md").unlink()
    with pytest.raises(diffctrl_book.PipelineError, match="without a source"):
        diffctrl_book.book_notebooks(book)


def test_source_needs_kernelspec_and_parameters(book):
    src = book / "notebooks" / "demo.md"
    src.write_text(NOTEBOOK.replace(":tags: [parameters]\n", ""))
    with pytest.raises(diffctrl_book.PipelineError, match="tagged 'parameters'"):
        diffctrl_book.read_source(src)
    src.write_text(
        NOTEBOOK.replace(
            "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n",
            "",
        )
    )
    with pytest.raises(diffctrl_book.PipelineError, match="kernelspec"):
        diffctrl_book.read_source(src)


def test_parameters_are_read_by_papermill():
    import jupytext

    nb = jupytext.reads(NOTEBOOK, fmt="md:myst")
    assert booktree.notebook_parameters(nb) == {
        "profile": "full",
        "overrides": {},
        "seed": 0,
        "device": "auto",
    }
    nb.cells[1].source += "\nthreshold = make_threshold()  # not a literal"
    assert booktree.notebook_parameters(nb)["threshold"] is None


def test_parallel_execution_writes_every_record(book):
    (book / "notebooks" / "demo2.md").write_text(
        NOTEBOOK.replace('Record("demo"', 'Record("demo2"')
    )
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n"
        "  - file: notebooks/demo\n  - file: notebooks/demo2\n"
    )
    outs = diffctrl_book.execute_all(book, "smoke", jobs=2)
    assert sorted(p.name for p in outs) == ["demo.ipynb", "demo2.ipynb"]
    for name in ("demo", "demo2"):
        assert (
            json.loads((book / "_build" / "results" / f"{name}.json").read_text())[
                "values"
            ]["total"]
            == 1
        )
    with pytest.raises(diffctrl_book.PipelineError, match="jobs must be >= 1"):
        diffctrl_book.execute_all(book, "smoke", jobs=0)


def test_default_threads_split_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert [diffctrl_book.default_threads(j) for j in (1, 2, 3, 16)] == [8, 4, 2, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert diffctrl_book.default_threads(2) == 1


def test_publish_extras_copies_the_named_artifacts_with_checksums(book):
    import hashlib

    art = book / "_build" / "artifacts" / "unet"
    art.mkdir(parents=True)
    (art / "model-abc123.pt").write_bytes(b"weights")
    (art / "model-stale99.pt").write_bytes(b"old")
    results = book / "_build" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "nb.json").write_text('{"values": {"unet_key": "abc123"}}')
    html = book / "_build" / "html"
    html.mkdir(parents=True)
    diffctrl_book.publish_extras(book, html)
    copied = html / "_static" / "artifacts" / "unet" / "model-abc123.pt"
    assert copied.read_bytes() == b"weights"
    assert not (copied.parent / "model-stale99.pt").exists()  # no record names that key
    sums = (html / "_static" / "artifacts" / "SHA256SUMS").read_text()
    assert sums == f"{hashlib.sha256(b'weights').hexdigest()}  unet/model-abc123.pt\n"


def _cli(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(Path(diffctrl_book.__file__).parents[1]))
    return subprocess.run(
        [sys.executable, "-m", "diffctrl_book", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )


def test_outside_the_repository_one_line_error(tmp_path):
    proc = _cli(["build"], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: not inside the book's repository")
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_verdicts_cli_prints_the_ledger(tmp_path):
    from diffctrl.repro.claims import Claim
    from diffctrl.repro.record import Record

    rec = Record("demo", "full", seed=3)
    rec.declare(
        [
            Claim(
                "rate",
                paper="p2024",
                where="Thm 2",
                statement="falls as 1/n",
                criterion="|slope + 1| < 0.1",
                baseline="zero steps",
                control="the exact rate",
            )
        ]
    )
    rec.verdict(
        "rate",
        "confirmed",
        evidence={"slope": -1.02},
        baseline_passes=False,
        per_seed=[True, True, False, True],
    )
    rec.save(tmp_path)
    proc = _cli(
        ["verdicts", "--results", str(tmp_path)], tmp_path
    )  # works outside a clone
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("confirmed"))
    assert line.split() == ["confirmed", "demo", "rate", "paper", "3/4", "no", "—", "3"]
    assert "papers' claims: 1 confirmed, 0 confirmed with caveat" in proc.stdout


@pytest.mark.slow
def test_one_notebook_loop_then_build(book):
    """The README's loop: execute one notebook, then build (the other never executed)."""
    (book / "notebooks" / "demo2.md").write_text(
        NOTEBOOK.replace('Record("demo"', 'Record("demo2"')
    )
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n"
        "  - file: notebooks/demo\n  - file: notebooks/demo2\n"
    )
    proc = _cli(["execute", "--profile", "smoke", "--only", "demo"], book)
    assert proc.returncode == 0, proc.stderr
    proc = _cli(["build"], book)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rendered from their sources without outputs: ['demo2']" in proc.stderr
    html = book / "_build" / "html"
    assert (html / "notebooks" / "demo.html").exists() and (
        html / "notebooks" / "demo2.html"
    ).exists()
    assert json.loads((html / "claims.json").read_text()) == []
    # nothing changed: the second build does not re-render
    proc = _cli(["build"], book)
    assert proc.returncode == 0 and "is up to date" in proc.stdout


def test_runs_are_measured_and_summarised(book):
    from diffctrl_book import timings

    diffctrl_book.execute_all(book, "smoke", jobs=1)
    meta = json.loads(
        (book / "_build" / "executed" / "notebooks" / "demo.ipynb").read_text()
    )["metadata"]["diffctrl"]
    # the kernel's CPU (its start-up alone takes a good fraction of a second)
    assert 0.1 < meta["cpu_seconds"] < 10 * meta["seconds"] + 1
    run = timings.read_run(book / "_build")
    assert run["profile"] == "smoke" and run["wall_s"] >= meta["seconds"]
    assert [(t["name"], t["kind"], t["ok"]) for t in run["tasks"]] == [
        ("demo", "notebook", True)
    ]
    assert run["tasks"][0]["cpu_seconds"] >= meta["cpu_seconds"]
    (row,) = timings.profile_rows(book / "_build" / "executed" / "notebooks")
    assert row["notebook"] == "demo" and row["sections"][0]["title"] == "set-up"
    text = diffctrl_book.profile(book)
    assert "| demo | smoke |" in text and "Last execute run" in text


FAKE_PREREQUISITE = """
import json, os
from pathlib import Path

def train(profile, device="cpu"):
    folder = Path(os.environ["DIFFCTRL_ARTIFACTS"])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "calls.jsonl", "a") as fh:
        fh.write(json.dumps([profile, device]) + "\\n")
    info = {"origin": "fake", "key": "abc", "unused": [1, 2], "path": str(folder / "m.pt")}
    return "model", info
"""


def test_a_declared_prerequisite_runs_once_before_the_notebooks_that_need_it(
    book, monkeypatch
):
    mods = book / "mods"
    mods.mkdir()
    (mods / "fake_prerequisite.py").write_text(FAKE_PREREQUISITE)
    monkeypatch.syspath_prepend(str(mods))
    (book / "pyproject.toml").write_text(
        '[tool.diffctrl.book.prerequisites."shared model"]\n'
        'callable = "fake_prerequisite:train"\n'
        'notebooks = ["demo"]\noverride = "unet"\n'
    )
    calls = book / "_build" / "artifacts" / "calls.jsonl"
    src = book / "notebooks" / "demo.md"
    src.write_text(NOTEBOOK.replace("fail=False)", "fail=False, unet=None)"))
    (book / "notebooks" / "other.md").write_text(
        NOTEBOOK.replace('Record("demo"', 'Record("other"')
    )
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n"
        "  - file: notebooks/demo\n  - file: notebooks/other\n"
    )
    diffctrl_book.execute_all(book, "smoke", only=["other"])
    assert not calls.exists()  # other does not need it: no prerequisite
    diffctrl_book.execute_all(book, "smoke", rejudge=["demo"], rejudge_seed=5)
    # once, with the profile and the notebook's device, for the notebook and its re-run
    assert calls.read_text().splitlines() == ['["smoke", "cpu"]']
    run = json.loads((book / "_build" / "execution.json").read_text())
    names = [(t["name"], t["kind"]) for t in run["tasks"]]
    assert names[0] == ("shared model", "prerequisite")  # before the runs that need it
    assert sorted(names[1:]) == [("demo", "notebook"), ("demo (seed 5)", "rejudge")]
    assert run["tasks"][0]["origin"] == "fake" and run["tasks"][0]["key"] == "abc"
    assert not {"unused", "path"} & set(
        run["tasks"][0]
    )  # scalars only, no machine path
    again = json.loads((book / "_build" / "rejudge" / "demo.json").read_text())
    assert again["seed"] == 5 and again["values"]["total"] == 1 + 5
    # a run that brings its own model (the declared override) does not wait for it
    diffctrl_book.execute_all(
        book, "smoke", only=["demo"], overrides={"unet": "mine"}, force=True
    )
    assert len(calls.read_text().splitlines()) == 1
    run = json.loads((book / "_build" / "execution.json").read_text())
    assert [(t["name"], t["kind"]) for t in run["tasks"]] == [("demo", "notebook")]


def test_malformed_prerequisites_are_refused(book):
    (book / "pyproject.toml").write_text(
        '[tool.diffctrl.book.prerequisites.x]\ncallable = "nocolon"\nnotebooks = ["demo"]\n'
    )
    with pytest.raises(diffctrl_book.PipelineError, match="module:function"):
        diffctrl_book.execute_all(book, "smoke")
