"""The book's sources: toc, the top of every notebook page, cell length, Colab twins, and what
each command installs (the book command, Binder, Colab) against what the notebooks import."""

import ast
import re
import shutil
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

from diffctrl_book import booktree, deps, prerequisites, sync

ROOT = Path(__file__).resolve().parents[2]
SOURCES = booktree.book_notebooks(ROOT, warn_untracked=False)
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
#: tags that fold or hide a code cell's input on the page
HIDDEN = {"hide-input", "remove-input", "remove-cell", "hide-cell"}
MAX_VISIBLE_LINES = 40


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def test_toc_files_exist_and_every_notebook_is_listed():
    for entry in booktree.toc_files(ROOT):
        assert list(ROOT.glob(entry + ".*")), f"_toc.yml entry {entry} has no file"
    # every notebook source is in the toc and every toc notebook has a source (raises otherwise)
    assert set(SOURCES) == set(booktree.notebook_sources(ROOT))


def test_twins_are_what_jupytext_writes(tmp_path):
    """Each committed ``.ipynb`` twin is what ``jupytext --sync`` writes from its source
    (``diffctrl-book sync`` runs it), with no outputs; checked on a copy, so it holds in a
    fresh clone, whatever the files' timestamps."""
    copies = []
    for source in SOURCES.values():
        shutil.copy2(source, tmp_path / source.name)
        twin = booktree.twin_path(source)
        if twin.exists():
            shutil.copy2(twin, tmp_path / twin.name)
        copies.append(tmp_path / source.name)
    changed = sync.write_twins(ROOT, copies)
    assert not changed, (
        "twins out of sync with their sources (run `diffctrl-book sync`): "
        + ", ".join(p.name for p in changed)
    )
    with_outputs = [
        name
        for name, source in SOURCES.items()
        if any(
            c.get("outputs") for c in jupytext.read(booktree.twin_path(source)).cells
        )
    ]
    assert not with_outputs, f"twins with outputs: {with_outputs}"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_notebook_conventions(name):
    nb = booktree.read_source(SOURCES[name])
    assert set(booktree.notebook_parameters(nb)) == {
        "profile",
        "overrides",
        "seed",
        "device",
    }
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "PROFILES" in code and "select_profile(PROFILES, profile, overrides)" in code
    assert re.search(rf'Record\(\s*"{name}"', code) and "rec.save()" in code
    assert "NBVAL_CHECK_OUTPUT" in code, "a verdict cell checked by nbval"
    assert ".cuda()" not in code


# --------------------------------------------------------------------------- top of the page
# a page that judges no claim (the benchmarks) says what it measures instead
WHAT = re.compile(r"^#{2,3}\s+What this (reproduces|page measures)\b", re.M)


def _judges_claims(nb) -> bool:
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return "CLAIMS" in code or re.search(r"\.verdict\(", code) is not None


def _is_claims_cell(cell) -> bool:
    """Tagged hide-input, assigns ``CLAIMS`` and ends with ``claims_table(CLAIMS)``."""
    if cell.cell_type != "code" or "hide-input" not in _tags(cell):
        return False
    try:
        body = ast.parse(cell.source).body
    except SyntaxError:
        return False
    assigns = any(
        isinstance(n, (ast.Assign, ast.AnnAssign))
        and any(
            isinstance(t, ast.Name) and t.id == "CLAIMS"
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
        )
        for n in body
    )
    last = body[-1] if body else None
    ends = (
        isinstance(last, ast.Expr)
        and isinstance(last.value, ast.Call)
        and isinstance(last.value.func, ast.Name)
        and last.value.func.id == "claims_table"
        and [ast.unparse(a) for a in last.value.args] == ["CLAIMS"]
    )
    return assigns and ends


def top_of_page_problems(nb) -> list[str]:
    """What breaks the order: title; the generated Colab cell; "What this reproduces"; (when
    the notebook judges claims) the folded ``CLAIMS`` cell ending in ``claims_table(CLAIMS)``;
    the parameters cell; the folded set-up cell."""
    cells = nb.cells
    problems = []
    if not (
        cells and cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    ):
        problems.append("the first cell is not the title ('# ...')")
    code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
    params = next((i for i in code if "parameters" in _tags(cells[i])), None)
    if params is None:
        return problems + ["no cell tagged parameters"]
    colab = code[0]
    if "google.colab" not in cells[colab].source:
        problems.append(
            "the first code cell is not the Colab cell (`diffctrl-book sync`)"
        )
    what = next(
        (
            i
            for i, c in enumerate(cells)
            if c.cell_type == "markdown" and WHAT.search(c.source)
        ),
        None,
    )
    if what is None:
        problems.append("no 'What this reproduces' section")
    elif not colab < what < params:
        problems.append(
            "'What this reproduces' is not between the Colab cell and the parameters"
        )
    between = [i for i in code if colab < i < params]
    if _judges_claims(nb):
        claims = [i for i in between if _is_claims_cell(cells[i])]
        if not claims:
            problems.append(
                "no folded (hide-input) cell defining CLAIMS and ending with "
                "claims_table(CLAIMS) before the parameters"
            )
        elif what is not None and claims[0] < what:
            problems.append("the CLAIMS cell comes before 'What this reproduces'")
        between = [i for i in between if i not in claims[:1]]
    if between:
        problems.append(
            f"other code before the parameters: {cells[between[0]].source.splitlines()[:1]}"
        )
    after = [i for i in code if i > params]
    if not after or "hide-input" not in _tags(cells[after[0]]):
        problems.append(
            "the cell after the parameters is not the set-up cell tagged hide-input"
        )
    return problems


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_page_opens_in_the_same_order(name):
    problems = top_of_page_problems(jupytext.read(SOURCES[name]))
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_no_visible_code_cell_is_longer_than_40_lines(name):
    """A page shows the calls that carry the idea; drivers, bookkeeping and verdicts live in
    the chapter's experiments module, and plotting that teaches nothing is folded."""
    long = []
    for i, cell in enumerate(jupytext.read(SOURCES[name]).cells):
        if cell.cell_type != "code" or HIDDEN & _tags(cell):
            continue
        lines = [ln for ln in cell.source.splitlines() if ln.strip()]
        if len(lines) > MAX_VISIBLE_LINES:
            long.append(f"cell {i} ({len(lines)} lines): {lines[0][:60]!r}")
    assert not long, (
        f"{name}: visible code cells over {MAX_VISIBLE_LINES} lines:\n"
        + "\n".join(long)
    )


def test_the_order_checker_finds_a_misplaced_cell():
    text = (ROOT / "notebooks" / "pift_lq.md").read_text()
    nb = jupytext.reads(text, fmt="md:myst")
    params = next(i for i, c in enumerate(nb.cells) if "parameters" in _tags(c))
    setup = nb.cells[params + 1]
    setup.metadata["tags"] = []
    assert any("set-up" in p for p in top_of_page_problems(nb))
    nb.cells.insert(1, nb.cells.pop(params))  # parameters right after the title
    assert top_of_page_problems(nb)


# --------------------------------------------------------------------------- generated cells
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_colab_cell_installs_exactly_what_the_notebook_needs(name):
    """Generated by `diffctrl-book sync` from the declared repository/ref and the extras the
    notebook's imports need (diffctrl_book.deps): diffctrl only, never the build tool."""
    text = SOURCES[name].read_text()
    assert sync.colab_cell(ROOT, SOURCES[name]) in text, (
        f"{name}: the Colab cell differs from what `diffctrl-book sync` writes"
    )
    twin = jupytext.read(booktree.twin_path(SOURCES[name]))
    first = next(c for c in twin.cells if c.cell_type == "code")
    assert "google.colab" in first.source and "remove-cell" in _tags(first)
    assert re.search(r'spec = "diffctrl(\[[\w,]+\])? @ git\+', first.source)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_last_cell_is_the_rerun_box(name):
    nb = jupytext.read(SOURCES[name])
    assert nb.cells[-1].cell_type == "markdown"
    assert nb.cells[-1].source.strip() == sync.rerun_cell(ROOT, name).strip(), (
        f"{name}: run `diffctrl-book sync`"
    )


def test_config_repository_block_is_generated_from_the_declared_place():
    declared = sync.declared(ROOT)
    assert CONFIG["repository"]["url"] == declared.repository
    assert CONFIG["repository"]["branch"] == declared.ref
    assert sync.config_block(ROOT) in (ROOT / "_config.yml").read_text()


# --------------------------------------------------------------------------- what is installed
def _book_command_extras() -> list[str]:
    script = (ROOT / "scripts" / "build_book.sh").read_text()
    m = re.search(r'^EXTRAS="\$\{EXTRAS:-([\w,]+)\}"$', script, re.M)
    assert m, 'scripts/build_book.sh must set EXTRAS="${EXTRAS:-...}"'
    return m.group(1).split(",")


def _book_command_installs() -> set[str]:
    """What the README's book command asks pip for: scripts/_setup.sh installs every
    ``-e <project>[extras]`` it names (diffctrl with build_book.sh's EXTRAS, and the build
    tool), as their pyproject files declare them."""
    setup = (ROOT / "scripts" / "_setup.sh").read_text()
    code = "\n".join(ln for ln in setup.splitlines() if not ln.lstrip().startswith("#"))
    targets = re.findall(r'-e\s+"?([^"\s\[]+)(?:\[([^\]]*)\])?"?', code)
    assert {t for t, _ in targets} == {".", "lib/diffctrl_book"}, targets
    out = set()
    for project, extras in targets:
        chosen = _book_command_extras() if "EXTRAS" in extras else extras.split(",")
        out |= deps.extras_closure(ROOT, [e for e in chosen if e], project=project)
    return deps.installed_closure(out)


def test_book_command_installs_every_notebook_import():
    """Every notebook's imports, followed through lib/diffctrl, are installed by the README's
    book command (diffctrl[book] and the build tool), and so are the build's own tools."""
    installs = _book_command_installs()
    missing = {
        name: sorted(deps.notebook_requirements(ROOT, src) - installs)
        for name, src in SOURCES.items()
    }
    assert not {k: v for k, v in missing.items() if v}, (
        f"the book command misses {missing}"
    )
    assert {"pytest", "papermill", "jupyter-book", "jupytext", "ipykernel"} <= installs


def test_the_book_extra_alone_installs_every_notebook_import():
    """``diffctrl[book]`` is what the notebooks import (the build tool adds only the build)."""
    installs = deps.installed_closure(deps.extras_closure(ROOT, ["book"]))
    for name, src in SOURCES.items():
        assert deps.notebook_requirements(ROOT, src) <= installs, name


def test_record_checks_need_only_what_the_book_command_installs():
    code = "\n".join(
        p.read_text()
        for p in [
            ROOT / "tests" / "conftest.py",
            *(ROOT / "tests" / "notebooks").glob("*.py"),
        ]
    )
    mods = {m.split(".")[0] for m in deps.code_imports(code)} - set(
        sys.stdlib_module_names
    )
    assert {deps.module_dist(m) for m in mods} - {
        "diffctrl"
    } <= _book_command_installs()


#: conda-forge names of the distributions environment.yml installs with conda
CONDA_NAME = {"torch": "pytorch-cpu"}


def test_binder_environment_installs_every_notebook_import():
    """Binder (environment.yml) is for reading and re-running notebooks: it installs
    ``diffctrl[book]`` and the kernel, not the build tool."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip_dists = set(), set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                m = re.fullmatch(r"-e\s+(\S+?)(?:\[([\w,]+)\])?", line.strip())
                assert m, (
                    f"environment.yml: pip line {line!r} is not an editable install"
                )
                assert m.group(1) == ".", "Binder installs diffctrl, not the build tool"
                pip_dists |= deps.extras_closure(
                    ROOT, (m.group(2) or "").split(",") if m.group(2) else []
                )
        else:
            conda.add(deps.canonical(re.split(r"[<>=! ]", dep)[0]))
    assert "ipykernel" in conda
    missing = [
        f"{name}: {dist}"
        for name, src in SOURCES.items()
        for dist in sorted(deps.notebook_requirements(ROOT, src))
        if CONDA_NAME.get(dist, dist) not in conda and dist not in pip_dists
    ]
    assert not missing, f"environment.yml lacks: {missing}"
    assert not {"jupyter-book", "papermill"} & (pip_dists | conda)


def test_constraints_pin_what_the_book_and_test_commands_install():
    text = (ROOT / "constraints.txt").read_text()
    pins = {
        deps.canonical(line.split("==")[0]): line.split("==")[1]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert all(re.fullmatch(r"[\w.!]+", v) for v in pins.values()), (
        "exact versions only"
    )
    direct = (
        deps.extras_closure(ROOT, _book_command_extras())
        | deps.extras_closure(ROOT, ["test"])
        | deps.extras_closure(ROOT, project="lib/diffctrl_book")
    )
    assert direct <= set(pins), f"unpinned: {sorted(direct - set(pins))}"
    setup = (ROOT / "scripts" / "_setup.sh").read_text()
    assert (
        'CONSTRAINTS="${CONSTRAINTS-constraints.txt}"' in setup
        and '"${PIN[@]}"' in setup
    )
    assert "constraints.txt" in (ROOT / "book" / "reproducibility.md").read_text()


# --------------------------------------------------------------------------- the execute step
def _imports_name(source: Path, module: str, name: str) -> bool:
    """Whether the notebook, or a diffctrl module its imports reach, imports ``name`` from
    ``module`` or from a package above it that re-exports it (those packages' ``__init__``
    files themselves do not count: importing a sibling module runs them)."""
    parts = module.split(".")
    packages = [".".join(parts[:i]) for i in range(1, len(parts))]
    wanted = {f"{p}.{name}" for p in [module, *packages]}
    skip = {ROOT / "lib" / Path(*parts).with_suffix(".py")}
    skip |= {ROOT / "lib" / Path(*p.split(".")) / "__init__.py" for p in packages}
    if wanted & deps.code_imports(deps.notebook_code(source)):
        return True
    for path in deps.source_files(ROOT, source):
        if path in skip:
            continue
        # the package relative imports resolve in (a module's, or an __init__'s own)
        package = ".".join(path.relative_to(ROOT / "lib").parts[:-1])
        if wanted & deps.code_imports(path.read_text(encoding="utf-8"), package):
            return True
    return False


def test_declared_prerequisites_list_exactly_the_notebooks_that_use_them():
    declared = prerequisites.declared_prerequisites(ROOT)
    assert [p.name for p in declared] == ["digit U-Net"]
    for p in declared:
        module, _, func = p.target.partition(":")
        assert callable(getattr(__import__(module, fromlist=[func]), func))
        users = sorted(
            n for n, src in SOURCES.items() if _imports_name(src, module, func)
        )
        assert sorted(p.notebooks) == users, (
            f"{p.name}: declared {p.notebooks}, used by {users}"
        )


@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_cost_hints_name_the_book_tasks(profile):
    """The ordering hints of pyproject.toml name real notebooks and prerequisites, and every
    task of each profile has one (a missing one starts in a guessed place)."""
    hints = prerequisites.cost_hints(ROOT, profile)
    tasks = set(SOURCES) | {p.name for p in prerequisites.declared_prerequisites(ROOT)}
    assert set(hints) == tasks
    assert all(v > 0 for v in hints.values())
