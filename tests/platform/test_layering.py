"""Two packages, one direction of imports.

- ``diffctrl`` (what a reader installs) never imports the build tool ``diffctrl_book``;
- the notebook harness ``diffctrl.repro`` (claims, verdicts, the results record) is imported
  only by a chapter's ``experiments`` / ``analysis`` module (a module of that name or ending
  in ``_experiments`` / ``_analysis``, e.g. ``control.lq_experiments``, or any module of a
  subpackage named ``experiments``) and by ``diffctrl.repro`` itself: an algorithm
  computes, an experiment judges.

Every module of ``lib/diffctrl`` is parsed (``ast``), function-level imports included, relative
imports resolved; a failure names the module, the line and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib"
BUILD_TOOL = "diffctrl_book"
HARNESS = "diffctrl.repro"
EXPERIMENT_NAMES = {"experiments", "analysis"}


def module_name(path: Path, lib: Path = LIB) -> str:
    """``lib/diffctrl/control/chain.py`` -> ``diffctrl.control.chain`` (a package's
    ``__init__.py`` -> the package)."""
    parts = list(path.relative_to(lib).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path, lib: Path = LIB) -> list[tuple[int, str, set[str]]]:
    """``(line, statement, absolute module names it may import)`` for every import in
    ``path``; ``from a import b`` may import ``a`` and ``a.b``."""
    text = path.read_text(encoding="utf-8")
    module = module_name(path, lib)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.Import):
            names = {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names = {base} | {f"{base}.{a.name}" for a in node.names}
        else:
            continue
        statement = " ".join((ast.get_source_segment(text, node) or "").split())
        out.append((node.lineno, statement, names))
    return out


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def may_import_harness(module: str) -> bool:
    """Whether ``module`` may import ``diffctrl.repro``."""
    parts = module.split(".")
    return (
        _within(module, HARNESS)
        or parts[-1] in EXPERIMENT_NAMES
        or any(parts[-1].endswith(f"_{n}") for n in EXPERIMENT_NAMES)
        or "experiments" in parts[1:-1]
    )


def violations(lib: Path = LIB) -> dict[str, list[str]]:
    """``{"build tool": [...], "harness": [...]}``: one line per offending import."""
    found: dict[str, list[str]] = {"build tool": [], "harness": []}
    for path in sorted((lib / "diffctrl").rglob("*.py")):
        module = module_name(path, lib)
        where = f"{module} ({lib.name}/{path.relative_to(lib).as_posix()}"
        for line, statement, names in imported(path, lib):
            if any(_within(n, BUILD_TOOL) for n in names):
                found["build tool"].append(f"{where}:{line}): {statement}")
            if not may_import_harness(module) and any(
                _within(n, HARNESS) for n in names
            ):
                found["harness"].append(f"{where}:{line}): {statement}")
    return found


def test_diffctrl_never_imports_the_build_tool():
    bad = violations()["build tool"]
    assert not bad, "diffctrl imports the build tool (diffctrl_book):\n" + "\n".join(
        bad
    )


def test_only_experiments_and_analysis_modules_import_the_harness():
    bad = violations()["harness"]
    assert not bad, (
        "algorithm modules import the notebook harness (diffctrl.repro); move the "
        "verdict code into the chapter's experiments/analysis module:\n"
        + "\n".join(bad)
    )


@pytest.mark.parametrize(
    "module, allowed",
    [
        ("diffctrl.lqr.experiments", True),
        ("diffctrl.control.analysis", True),
        ("diffctrl.control.experiments.lq", True),
        ("diffctrl.repro.record", True),
        ("diffctrl.repro", True),
        ("diffctrl.control.lq", False),
        ("diffctrl.control.lq_experiments", True),
        ("diffctrl.finetune.digits_analysis", True),
        ("diffctrl.control.lq_experiment_tools", False),
        ("diffctrl.experiments_helpers", False),
        ("diffctrl.stats", False),
    ],
)
def test_who_may_import_the_harness(module, allowed):
    assert may_import_harness(module) is allowed


def test_the_checker_finds_each_kind_of_import(tmp_path):
    pkg = tmp_path / "diffctrl"
    (pkg / "chapter").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "chapter" / "__init__.py").write_text("from .algo import f\n")
    (pkg / "chapter" / "algo.py").write_text(
        "import numpy\n\ndef f():\n    from .. import repro\n    return repro\n"
    )
    (pkg / "chapter" / "experiments.py").write_text(
        "from ..repro import Claim\nfrom diffctrl.repro.record import Record\n"
    )
    (pkg / "chapter" / "tables.py").write_text("import diffctrl.repro.claims as c\n")
    (pkg / "chapter" / "build.py").write_text("from diffctrl_book.cli import main\n")
    found = violations(tmp_path)
    assert found["build tool"] == [
        f"diffctrl.chapter.build ({tmp_path.name}/diffctrl/chapter/build.py:1): "
        "from diffctrl_book.cli import main"
    ]
    assert found["harness"] == [
        f"diffctrl.chapter.algo ({tmp_path.name}/diffctrl/chapter/algo.py:4): "
        "from .. import repro",
        f"diffctrl.chapter.tables ({tmp_path.name}/diffctrl/chapter/tables.py:1): "
        "import diffctrl.repro.claims as c",
    ]
