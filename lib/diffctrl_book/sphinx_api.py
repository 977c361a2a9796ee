"""Sphinx extension behind the API reference (``book/api.md``).

- The directive ``.. diffctrl-modules:: <package>`` documents a subpackage: its docstring, a
  summary table of its modules and every module's members (autodoc), found by walking the
  package, so a module added to ``lib/`` appears without editing the page. With the option
  ``:top-level:`` it documents the package's plain modules (not its subpackages) instead.
- A reference through a package that re-exports the object (``diffctrl.repro.Record``,
  ``diffctrl.control.solve_lq``, or ``Record`` written inside the package's own page) resolves
  to where the object is documented, its defining module (``diffctrl.repro.record.Record``):
  the packages' ``__init__`` files re-export their public names, and docstrings may cite them
  the way a notebook imports them.
- diffctrl's docstrings write formulas as plain text (``|u|^2``, ``p*``, ``a * b``): before
  autodoc parses a docstring as reStructuredText, every ``|`` and every ``*`` that does not
  open or close an emphasis is escaped, outside inline literals and roles. Docstrings stay
  plain text in the source and in ``help()``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

__all__ = [
    "DiffctrlModules",
    "all_modules",
    "canonical_target",
    "escape_plain",
    "module_rst",
    "package_modules",
    "setup",
]

# inline literals, roles with their target, and intended *emphasis* / **strong** spans
_KEEP = re.compile(
    r"``.+?``|:[\w:.-]+:`[^`]*`|`[^`]+`_?"
    r"|(?<![\w*\\])\*\*?(?=[^\s*])[^*]*?(?<=[^\s\\])\*\*?(?![\w*])"
)


def escape_plain(line: str) -> str:
    """``line`` with ``|`` and stray ``*`` escaped outside literals, roles and emphasis."""
    out, pos = [], 0
    for m in _KEEP.finditer(line):
        out.append(_escape(line[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_escape(line[pos:]))
    return "".join(out)


def _escape(s: str) -> str:
    # a character already escaped in the source (``\\|``) stays as it is
    return re.sub(r"(?<!\\)([|*])", r"\\\1", s)


def _process(app, what, name, obj, options, lines) -> None:
    """``autodoc-process-docstring``: escape each line, literal blocks left as they are."""
    in_block = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if in_block and stripped and not line.startswith((" ", "\t")):
            in_block = False
        if not in_block:
            lines[i] = escape_plain(line)
        if stripped.endswith("::"):  # a literal block follows: leave it as it is
            in_block = True


def package_modules(package: str) -> tuple[list[str], list[str]]:
    """(the plain modules directly in ``package``, its subpackages), sorted full names."""
    pkg = importlib.import_module(package)
    plain, subs = [], []
    for info in pkgutil.iter_modules(pkg.__path__, package + "."):
        (subs if info.ispkg else plain).append(info.name)
    return sorted(plain), sorted(subs)


def all_modules(package: str) -> list[str]:
    """Every module below ``package`` (subpackages walked), sorted full names."""
    pkg = importlib.import_module(package)
    return sorted(m.name for m in pkgutil.walk_packages(pkg.__path__, package + "."))


def module_rst(package: str, top_level: bool = False) -> list[str]:
    """The reStructuredText the directive parses."""
    plain, subs = package_modules(package)
    if not top_level:
        lines = [f".. automodule:: {package}", "   :no-members:", ""]
        mods = all_modules(package)
    else:
        lines = [f".. currentmodule:: {package}", ""]
        mods = plain
    # relative to the current module (autosummary refuses the module's own prefix)
    lines += (
        [".. autosummary::", ""] + [f"   {m[len(package) + 1 :]}" for m in mods] + [""]
    )
    for m in mods:
        lines += [
            f".. rubric:: {m}",
            "",
            f".. automodule:: {m}",
            "   :members:",
            "   :undoc-members:",
            "",
        ]
    return lines


class DiffctrlModules(SphinxDirective):
    """``.. diffctrl-modules:: <package>`` (option ``:top-level:``): see the module docstring."""

    required_arguments = 1
    option_spec = {"top-level": directives.flag}

    def run(self):
        package = self.arguments[0]
        rst = module_rst(package, top_level="top-level" in self.options)
        node = nodes.container()
        self.state.nested_parse(
            StringList(rst, source=f"<{package}>"), self.content_offset, node
        )
        return node.children


def canonical_target(target: str, module: str | None = None) -> str | None:
    """Where a re-exported object is documented: ``diffctrl.repro.Record.verdict`` ->
    ``diffctrl.repro.record.Record.verdict`` (its defining module and qualified name); a name
    without a module is looked up in ``module`` (the page's current module). ``None`` when
    ``target`` is not a diffctrl object reached through a re-export."""
    if not target.startswith("diffctrl") and module and module.startswith("diffctrl"):
        target = f"{module}.{target}"
    if not target.startswith("diffctrl"):
        return None
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        head = getattr(obj, parts[i], None)
        where = getattr(head, "__module__", None), getattr(head, "__qualname__", None)
        if head is None or None in where:
            return None
        canonical = ".".join([*where, *parts[i + 1 :]])
        return canonical if canonical != target else None
    return None


def _resolve_reexport(app, env, node, contnode):
    """``missing-reference``: retry a Python reference at its :func:`canonical_target`."""
    if node.get("refdomain") != "py":
        return None
    target = canonical_target(node.get("reftarget", ""), node.get("py:module"))
    if target is None:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
    )


def setup(app) -> dict[str, bool]:
    """Register the docstring escaper, the re-export resolver and the directive (Sphinx's
    extension entry point)."""
    app.connect("autodoc-process-docstring", _process)
    app.connect("missing-reference", _resolve_reexport)
    app.add_directive("diffctrl-modules", DiffctrlModules)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
