"""What a notebook needs installed: its imports, followed through ``diffctrl``, and the extras.

One declared place: the dependencies and extras of ``pyproject.toml``. From a notebook's code
cells this module finds every third-party module it needs, following its ``diffctrl`` imports
into ``lib/`` (function-level imports count, since the notebook may call that function; an
import inside ``try: ... except ImportError`` is optional and does not). From those it derives

- :func:`notebook_requirements`: the distributions a notebook needs (``packaging`` names);
- :func:`notebook_extras`: the smallest set of the package's extras that installs them (what its
  Colab cell installs, see :mod:`diffctrl_book.sync`);
- :func:`extras_closure`: what ``pip install -e .[extras]`` (or ``-e lib/diffctrl_book``) asks
  for, as declared, so tests can check that the book command, Binder and Colab install what
  every notebook imports;
- :func:`source_files`: the ``diffctrl`` files a notebook runs (part of the execution cache key).

Needs only the standard library and ``pyproject.toml`` (``tomllib``, or ``tomli`` before 3.11).
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

__all__ = [
    "KERNEL_PROVIDED",
    "LOCAL_PROJECTS",
    "MODULE_DIST",
    "canonical",
    "code_imports",
    "extras_closure",
    "installed_closure",
    "module_dist",
    "notebook_code",
    "notebook_extras",
    "notebook_modules",
    "notebook_requirements",
    "pyproject",
    "source_files",
]

#: The repository's own projects, as folders holding a ``pyproject.toml``: ``diffctrl`` and the
#: build tool (``diffctrl-book``, which requires ``diffctrl[book]``).
LOCAL_PROJECTS = (".", "lib/diffctrl_book")
#: Import names whose distribution is named otherwise (used when the package is not installed).
MODULE_DIST = {
    "torch": "torch",
    "sklearn": "scikit-learn",
    "ot": "pot",
    "yaml": "pyyaml",
    "PIL": "pillow",
    "IPython": "ipython",
    "myst_nb": "myst-nb",
    "diffctrl": "diffctrl",
    "mpl_toolkits": "matplotlib",
}
#: Provided by the Jupyter kernel every notebook runs in (Colab, Binder and the book command's
#: ``ipykernel``), so never asked of an extra.
KERNEL_PROVIDED = {"ipython", "ipykernel"}
_EXCEPT_OPTIONAL = {"ImportError", "ModuleNotFoundError", "Exception"}


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject(root: Path) -> dict:
    """The parsed ``pyproject.toml`` of the repository at ``root``."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            from pip._vendor import tomli as tomllib
    with open(Path(root) / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _req_name(req: str) -> tuple[str, list[str]]:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", req)
    if not m:
        raise ValueError(f"cannot parse requirement {req!r}")
    extras = [e.strip() for e in (m.group(2) or "").split(",") if e.strip()]
    return canonical(m.group(1)), extras


def _local_projects(root: Path) -> dict[str, dict]:
    """``{canonical name: [project] table}`` of the repository's own projects
    (:data:`LOCAL_PROJECTS` that exist under ``root``)."""
    out = {}
    for rel in LOCAL_PROJECTS:
        if (Path(root) / rel / "pyproject.toml").exists():
            project = pyproject(Path(root) / rel)["project"]
            out[canonical(project["name"])] = project
    return out


def extras_closure(
    root: Path, extras: Iterable[str] = (), project: str = "."
) -> set[str]:
    """Distributions ``pip install -e <project>[extras]`` asks for directly: its dependencies
    and those of its ``extras``, where a requirement on one of the repository's own projects
    (``diffctrl[book]`` in the build tool's list, ``diffctrl[large]`` in an extra) is expanded
    in place. The repository's own projects are left out of the result."""
    projects = _local_projects(root)
    start = canonical(pyproject(Path(root) / project)["project"]["name"])
    todo: list[tuple[str, str | None]] = [(start, None)] + [(start, e) for e in extras]
    seen: set[tuple[str, str | None]] = set()
    out: set[str] = set()
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        table = projects[name]
        optional = table.get("optional-dependencies", {})
        if extra is not None and extra not in optional:
            raise ValueError(
                f"extra {extra!r} is not declared by {table['name']}; "
                f"declared: {sorted(optional)}"
            )
        for req in table.get("dependencies", []) if extra is None else optional[extra]:
            dist, sub = _req_name(req)
            if dist in projects:
                todo += [(dist, None)] + [(dist, e) for e in sub]
            else:
                out.add(dist)
    return out


def installed_closure(dists: Iterable[str]) -> set[str]:
    """``dists`` and, where installed here, their own requirements (transitively)."""
    out: set[str] = set()
    todo = [canonical(d) for d in dists]
    while todo:
        dist = todo.pop()
        if dist in out:
            continue
        out.add(dist)
        try:
            reqs = md.requires(dist) or []
        except md.PackageNotFoundError:
            continue
        for req in reqs:
            if "extra ==" in req:
                continue
            todo.append(_req_name(req)[0])
    return out


@lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    try:
        return md.packages_distributions()
    except Exception:  # pragma: no cover - very old importlib.metadata
        return {}


def module_dist(module: str) -> str:
    """Distribution (canonical name) providing the top-level import ``module``."""
    found = _packages_distributions().get(module)
    if found:
        return canonical(found[0])
    return canonical(MODULE_DIST.get(module, module))


def _is_optional(handlers: list[ast.ExceptHandler]) -> bool:
    for h in handlers:
        names = []
        if h.type is None:
            return True
        for node in [h.type] if not isinstance(h.type, ast.Tuple) else h.type.elts:
            if isinstance(node, ast.Name):
                names.append(node.id)
        if _EXCEPT_OPTIONAL & set(names):
            return True
    return False


def code_imports(code: str, package: str | None = None) -> set[str]:
    """Absolute module names imported (not optionally) by ``code``.

    ``package`` resolves relative imports (the dotted package the code lives in). ``from a
    import b`` yields ``a`` and ``a.b`` (``b`` may be a submodule). IPython magics are skipped.
    """
    code = "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line
        for line in code.splitlines()
    )
    tree = ast.parse(code)
    optional: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and _is_optional(node.handlers):
            for stmt in node.body:
                optional.update(id(n) for n in ast.walk(stmt))
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if not package:
                    continue
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names if a.name != "*")
    return {m for m in out if m}


def _module_file(lib: Path, module: str) -> Path | None:
    rel = Path(*module.split("."))
    for cand in (lib / rel.with_suffix(".py"), lib / rel / "__init__.py"):
        if cand.exists():
            return cand
    return None


@lru_cache(maxsize=1024)
def _file_imports(path: str, mtime_ns: int, package: str) -> frozenset[str]:
    return frozenset(code_imports(Path(path).read_text(encoding="utf-8"), package))


def _walk(root: Path, code: str) -> tuple[set[str], set[Path]]:
    lib = Path(root) / "lib"
    third: set[str] = set()
    files: set[Path] = set()
    todo = [(m, None) for m in code_imports(code)]
    while todo:
        module, _ = todo.pop()
        top = module.split(".")[0]
        if top != "diffctrl":
            if top not in sys.stdlib_module_names and not top.startswith("_"):
                third.add(top)
            continue
        parts = module.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b, a.b.c
            path = _module_file(lib, ".".join(parts[:i]))
            if path is None or path in files:
                continue
            files.add(path)
            is_pkg = path.name == "__init__.py"
            pkg = ".".join(parts[:i]) if is_pkg else ".".join(parts[: i - 1])
            todo += [
                (m, None)
                for m in _file_imports(str(path), path.stat().st_mtime_ns, pkg)
            ]
    return third, files


def notebook_code(source: Path) -> str:
    """The code cells of a jupytext notebook source, joined."""
    import jupytext

    nb = jupytext.read(source)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def notebook_modules(root: Path, source: Path) -> set[str]:
    """Top-level third-party modules a notebook needs (through its ``diffctrl`` imports)."""
    return _walk(root, notebook_code(source))[0]


def source_files(root: Path, source: Path) -> list[Path]:
    """The ``lib/diffctrl`` files the notebook imports (transitively), sorted."""
    return sorted(_walk(root, notebook_code(source))[1])


def notebook_requirements(root: Path, source: Path) -> set[str]:
    """Distributions (canonical names) the notebook needs; ``diffctrl`` itself and what the
    kernel provides (``KERNEL_PROVIDED``) left out."""
    return (
        {module_dist(m) for m in notebook_modules(root, source)}
        - {"diffctrl"}
        - KERNEL_PROVIDED
    )


def notebook_extras(
    root: Path, source: Path, candidates: Iterable[str] | None = None
) -> list[str]:
    """The smallest list of extras (among ``candidates``: every extra but ``book``/``test``
    by default) whose installation, with the core dependencies, covers what the notebook
    imports. Raises ValueError when no combination does (the import is declared nowhere)."""
    from itertools import combinations

    optional = pyproject(root)["project"].get("optional-dependencies", {})
    cands = sorted(
        candidates
        if candidates is not None
        else (e for e in optional if e not in ("book", "test"))
    )
    need = notebook_requirements(root, source)
    for k in range(len(cands) + 1):
        for combo in combinations(cands, k):
            if need <= installed_closure(extras_closure(root, combo)):
                return list(combo)
    core = installed_closure(extras_closure(root, cands))
    raise ValueError(
        f"{source.name}: imports {sorted(need - core)}, which neither the "
        "dependencies nor any extra of pyproject.toml declare"
    )
