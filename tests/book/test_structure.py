"""The book's sources: toc, notebook conventions, Colab twins, Binder environment."""

import ast
import re
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

from diffctrl import pipeline

ROOT = Path(__file__).resolve().parents[2]
SOURCES = pipeline.notebook_sources(ROOT)
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def test_toc_files_exist_and_every_notebook_is_listed():
    for entry in pipeline.toc_files(ROOT):
        assert list(ROOT.glob(entry + ".*")), f"_toc.yml entry {entry} has no file"
    # every notebook source is in the toc and every toc notebook has a source (raises otherwise)
    assert set(pipeline.book_notebooks(ROOT)) == set(SOURCES)


def test_twins_in_sync():
    assert pipeline.drifted_twins(ROOT) == []


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_notebook_conventions(name):
    nb = pipeline.read_source(SOURCES[name])
    assert pipeline.parameter_names(nb) == {"profile", "overrides", "seed", "device"}
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "PROFILES" in code and "select_profile(PROFILES, profile, overrides)" in code
    assert f'Record("{name}"' in code and "rec.save()" in code
    assert "NBVAL_CHECK_OUTPUT" in code, "a verdict cell checked by nbval"
    assert ".cuda()" not in code


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_colab_twin_installs_the_package(name):
    twin = jupytext.read(pipeline.twin_path(SOURCES[name]))
    first = next(c for c in twin.cells if c.cell_type == "code")
    assert "google.colab" in first.source and "pip" in first.source
    assert CONFIG["repository"]["url"].rstrip("/") in first.source


def _imports(source: str) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            mods.add(node.module.split(".")[0])
    return mods


DIST = {"torch": "pytorch-cpu", "sklearn": "scikit-learn", "ot": "pot", "diffctrl": "-e .",
        "IPython": "ipykernel", "myst_nb": "myst-nb"}


def test_binder_environment_lists_every_notebook_import():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            listed.update(d.strip() for d in dep["pip"])
        else:
            listed.add(dep)
    names = {re.split(r"[<>=! ]", d)[0] if not d.startswith("-e") else "-e ." for d in listed}
    missing = []
    for name, src in SOURCES.items():
        code = "\n".join(c.source for c in jupytext.read(src).cells if c.cell_type == "code")
        for mod in _imports(code):
            if mod in sys.stdlib_module_names:
                continue
            dist = DIST.get(mod, mod)
            if dist not in names:
                missing.append(f"{name}: {mod} ({dist})")
    assert not missing, f"environment.yml lacks: {missing}"


LARGE = ("diffctrl.finetune.sd", "diffctrl.finetune.lora", "diffctrl.finetune.ddp")


def test_notebooks_on_the_large_model_path_install_its_extra():
    # diffusers / peft / transformers are imported inside lib/, not by the notebook itself
    env = (ROOT / "environment.yml").read_text()
    assert "-e .[large]" in env
    for name, src in SOURCES.items():
        cells = [c for c in jupytext.read(src).cells if c.cell_type == "code"]
        if any(m in c.source for c in cells for m in LARGE):
            assert "diffctrl[large]" in cells[0].source, f"{name}: the Colab cell must install diffctrl[large]"
