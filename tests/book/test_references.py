"""Every reference in the repository resolves inside it.

Scanned: lib/, book/, notebooks/ (the MyST sources), tests/, README.md, CONTRIBUTING.md.
A reference fails when it names a file the repository does not hold:

- the working notes outside the repository (``papers.md``, ``../shared/``, ``seeds/``): the
  conventions the code relies on live in ``book/notation.md``, and the papers are cited by
  their own section numbers;
- a repository path in double backticks (``book/notation.md``, ``lib/diffctrl/...``), as the
  docstrings cite chapters;
- a relative Markdown link ``[text](path)`` and a MyST ``{doc}`` target;
- a glued key's notebook (``/notebooks/<name>.ipynb::key``): its source ``notebooks/<name>.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["lib", "book", "notebooks", "tests", "README.md", "CONTRIBUTING.md"]
SUFFIXES = {".py", ".md", ".yml", ".yaml", ".toml", ".cfg", ".txt", ".sh", ".bib"}

# Files outside the repository that older text pointed at; named only as string pieces here so
# that this file does not match itself.
OUTSIDE = [
    re.compile(p)
    for p in (
        r"papers" + r"\.md",
        r"\.\./" + r"shared/",
        r"/work/" + r"shared",
        r"(?<![\w_])seeds/",
    )
]
TOP = (
    "book/",
    "lib/",
    "notebooks/",
    "tests/",
    "scripts/",
    "benchmarks/",
    ".github/",
    ".ci/",
)
_TOP = "|".join(re.escape(t) for t in TOP)
BACKTICKED = re.compile(r"``((?:" + _TOP + r")[^`\s<>*{}]+)``")
MD_LINK = re.compile(r"\]\(([\w./-]+?)(?:#[\w-]*)?\)")
DOC_ROLE = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`")
GLUE = re.compile(r"`/?(notebooks/[\w-]+)\.ipynb::")

# Files the pipeline writes (``diffctrl-book build``), legitimately named before
# they exist.
GENERATED = {"book/claims.md", "book/execution.md", "book/report_card.md"}


def scanned_files(root: Path = ROOT) -> list[Path]:
    out = []
    for name in SCANNED:
        p = root / name
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out += [
                f
                for f in sorted(p.rglob("*"))
                if f.is_file()
                and f.suffix in SUFFIXES
                and "__pycache__" not in f.parts
                and ".ipynb_checkpoints" not in f.parts
            ]
    return out


def broken_references(path: Path, text: str, root: Path = ROOT) -> list[str]:
    """The references in ``text`` (the content of ``path``) that do not resolve in ``root``."""
    bad = []
    for pat in OUTSIDE:
        bad += [m.group(0) for m in pat.finditer(text)]
    for m in BACKTICKED.finditer(text):
        target = m.group(1).rstrip(".,;:)")
        if target not in GENERATED and not (root / target).exists():
            bad.append(target)
    if path.suffix == ".md":
        for m in MD_LINK.finditer(text):
            target = m.group(1)
            if "." not in target and "/" not in target:
                continue
            base = root if target.startswith("/") else path.parent
            if not (base / target.lstrip("/")).exists():
                bad.append(target)
        for m in DOC_ROLE.finditer(text):
            target = m.group(1).strip()
            base = root if target.startswith("/") else path.parent
            stem = base / target.lstrip("/")
            if (
                not any(stem.with_suffix(s).exists() for s in (".md", ".ipynb"))
                and not stem.exists()
            ):
                bad.append(target)
    for m in GLUE.finditer(text):
        if not (root / f"{m.group(1)}.md").exists():
            bad.append(m.group(0))
    return bad


def _rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def _all_broken() -> dict[str, list[str]]:
    found = {}
    for f in scanned_files():
        if f == Path(__file__).resolve():
            continue
        bad = broken_references(f, f.read_text(encoding="utf-8", errors="replace"))
        if bad:
            found[_rel(f)] = bad
    return found


def test_every_reference_resolves_inside_the_repository():
    found = _all_broken()
    assert not found, "references to files the repository does not hold:\n" + "\n".join(
        f"  {f}: {sorted(set(b))}" for f, b in sorted(found.items())
    )


def test_the_notation_page_exists_and_is_in_the_toc():
    assert (ROOT / "book" / "notation.md").is_file()
    assert "book/notation" in (ROOT / "_toc.yml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "text, bad",
    [
        ("see ``papers.md`` Sec. 1", ["papers.md"]),
        ("conventions of ../shared/papers.md", ["papers.md", "../shared/"]),
        ("(``book/nowhere.md``, *The chain*)", ["book/nowhere.md"]),
        ("(``book/notation.md``, *The controlled chain*)", []),
        ("[the notebook](../notebooks/missing.ipynb)", ["../notebooks/missing.ipynb"]),
        ("[the chapter](notation.md#notation-chain)", []),
        ("$[0, 1](x)$ and [a](https://example.org/x.md)", []),
        ("{doc}`../notebooks/nothing_here`", ["../notebooks/nothing_here"]),
        ("{doc}`the LQ notebook <../notebooks/pift_lq>`", []),
        ("{glue:text}`/notebooks/ghost.ipynb::key:.3g`", ["`/notebooks/ghost.ipynb::"]),
        ("{glue:text}`/notebooks/pift_lq.ipynb::key:.3g`", []),
    ],
)
def test_the_scanner_finds_broken_references(text, bad):
    assert broken_references(ROOT / "book" / "page.md", text) == bad


def _api_extension():
    """The Sphinx extension behind book/api.md (``_config.yml`` loads it by this name)."""
    from diffctrl_book import sphinx_api

    extensions = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]
    assert "diffctrl_book.sphinx_api" in extensions["extra_extensions"]
    return sphinx_api


def test_the_api_page_documents_every_module():
    """book/api.md documents every subpackage of diffctrl (its directive walks the
    subpackage's modules) and the top-level modules; together that is every module of diffctrl,
    and nothing of the build tool."""
    import pkgutil

    import diffctrl

    ext = _api_extension()
    text = (ROOT / "book" / "api.md").read_text(encoding="utf-8")
    packages = re.findall(r"^\.\. diffctrl-modules:: (\S+)$", text, flags=re.M)
    top = "diffctrl" in packages and re.search(
        r"diffctrl-modules:: diffctrl\n\s+:top-level:", text
    )
    assert top, "book/api.md must document diffctrl's top-level modules"
    plain, subs = ext.package_modules("diffctrl")
    assert set(subs) <= set(packages), (
        f"add a section to book/api.md for {set(subs) - set(packages)}"
    )
    covered = set(plain) | {m for p in subs for m in ext.all_modules(p)} | set(subs)
    modules = {m.name for m in pkgutil.walk_packages(diffctrl.__path__, "diffctrl.")}
    assert covered == modules
    rst = ext.module_rst("diffctrl.control")
    assert ".. automodule:: diffctrl.control.chain" in rst and "   chain" in rst
    assert "diffctrl_book" not in text and "pipeline" not in text.lower()
    assert {"diffctrl.repro", "diffctrl.digits"} <= set(packages)


def test_plain_text_formulas_are_escaped_for_autodoc():
    esc = _api_extension().escape_plain
    assert esc("KL = |u|^2 / (2 s^2)") == r"KL = \|u\|^2 / (2 s^2)"
    assert esc("p* and **kw") == r"p\* and \*\*kw"
    assert esc("see *The chain* and ``|x| * y``") == "see *The chain* and ``|x| * y``"
    assert esc(r":func:`f` of \|x\|") == r":func:`f` of \|x\|"


def test_cross_document_glue_text_carries_a_format_spec():
    """myst-nb splits ``{glue:text}`path::key:fmt``` at the last colon, so a cross-document
    reference without a format spec loses its key (``path:`` is looked up): always add one
    (``:s`` for words)."""
    bad = []
    for path in sorted((ROOT / "book").glob("*.md")) + sorted(
        (ROOT / "notebooks").glob("*.md")
    ):
        for m in re.finditer(
            r"\{glue:text\}`([^`]*)`", path.read_text(encoding="utf-8")
        ):
            ref = m.group(1)
            if "::" in ref and ":" not in ref.split("::", 1)[1]:
                bad.append(f"{path.relative_to(ROOT)}: {ref}")
    assert not bad, "cross-document glue without a format spec:\n" + "\n".join(bad)


def test_references_through_a_reexporting_package_resolve_to_the_defining_module():
    """Docstrings cite objects the way notebooks import them (``diffctrl.repro.Record``); the
    API page documents them in their defining module, where the extension sends the link."""
    target = _api_extension().canonical_target
    assert (
        target("diffctrl.repro.Record.verdict")
        == "diffctrl.repro.record.Record.verdict"
    )
    assert (
        target("diffctrl.repro.count_verdict") == "diffctrl.repro.claims.count_verdict"
    )
    assert target("Record", "diffctrl.repro") == "diffctrl.repro.record.Record"
    assert (
        target("diffctrl.repro.record.Record") is None
    )  # already where it is documented
    assert target("numpy.linalg.norm") is None and target("diffctrl.nowhere.X") is None
