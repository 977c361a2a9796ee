"""diffctrl_book.deps: a notebook's imports followed through lib/, optional imports, extras."""

from pathlib import Path

from diffctrl_book import deps

ROOT = Path(__file__).resolve().parents[2]


def test_code_imports_resolves_relative_and_skips_optional_and_magics():
    code = (
        "%matplotlib inline\n"
        "import numpy as np\n"
        "from .lora import attach\n"
        "from . import sd\n"
        "try:\n    import myst_nb\nexcept ImportError:\n    myst_nb = None\n"
        "def f():\n    from peft import LoraConfig\n"
    )
    got = deps.code_imports(code, package="diffctrl.finetune.large")
    assert got == {
        "numpy",
        "diffctrl.finetune.large.lora",
        "diffctrl.finetune.large.lora.attach",
        "diffctrl.finetune.large",
        "diffctrl.finetune.large.sd",
        "peft",
        "peft.LoraConfig",
    }


def test_extras_closure_expands_self_references(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo_pkg"\ndependencies = ["numpy>=1"]\n'
        "[project.optional-dependencies]\n"
        'a = ["Foo_Bar[x]>=2"]\nb = ["demo-pkg[a]", "baz"]\n'
    )
    assert deps.extras_closure(tmp_path) == {"numpy"}
    assert deps.extras_closure(tmp_path, ["b"]) == {"numpy", "foo-bar", "baz"}


def test_the_build_tool_brings_diffctrl_book_extra_and_its_own_tools():
    """``pip install -e lib/diffctrl_book`` asks for diffctrl[book] (expanded in place) and the
    tools of the build; diffctrl itself asks for none of them."""
    tool = deps.extras_closure(ROOT, project="lib/diffctrl_book")
    assert {"jupyter-book", "papermill", "jupytext"} <= tool
    assert deps.extras_closure(ROOT, ["book"]) <= tool
    assert not {"diffctrl", "diffctrl-book"} & tool
    reader = deps.extras_closure(ROOT, ["book", "large"])
    assert not {"jupyter-book", "papermill", "jupytext"} & reader


def test_a_notebook_on_the_large_model_path_needs_the_large_extra(tmp_path):
    src = tmp_path / "nb.md"
    src.write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
        "```{code-cell} ipython3\nfrom diffctrl.finetune.large.lora import add_lora\n```\n"
    )
    need = deps.notebook_requirements(ROOT, src)
    assert {"peft", "torch"} <= need and "diffctrl" not in need
    assert deps.notebook_extras(ROOT, src) == ["large"]
    lora = ROOT / "lib" / "diffctrl" / "finetune" / "large" / "lora.py"
    assert lora in deps.source_files(ROOT, src)
