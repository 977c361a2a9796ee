"""Staging and rendering the book: ``_build/site`` -> Jupyter Book -> ``_build/html``.

:func:`stage_site` assembles what Jupyter Book renders (``book/``, the executed notebooks, the
generated claims ledger, ``constraints.txt``); :func:`build_book` renders it unless it is
byte-identical to what the current ``_build/html`` was rendered from, and publishes
``claims.json`` and the shared artifacts (with their SHA-256 list) beside the HTML.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .booktree import PipelineError, book_notebooks, mkdir, read_source, warn

CLAIMS_PAGE = "book/claims.md"
REPORT_CARD = "book/report_card.md"  # generated: diffctrl_book.ledger.report_card
PROFILE_PAGE = "book/execution.md"  # generated: diffctrl_book.timings.profile_page


def executed_profiles(root: Path) -> dict[str, str]:
    import nbformat

    out = {}
    for path in sorted((root / "_build" / "executed" / "notebooks").glob("*.ipynb")):
        meta = nbformat.read(str(path), as_version=4).metadata.get("diffctrl", {})
        out[path.stem] = meta.get("profile", "?")
    return out


def _bib_keys(root: Path) -> set[str]:
    import re

    keys = set()
    for bib in (root / "book").glob("*.bib"):
        keys.update(
            re.findall(r"@\w+\s*\{\s*([^,\s]+)\s*,", bib.read_text(encoding="utf-8"))
        )
    return keys


def stage_site(root: Path, profile: str | None = None) -> tuple[Path, list[str]]:
    """Assemble ``_build/site``: config, toc, ``book/``, the executed notebooks, the generated
    claims ledger (``book/claims.md``, :func:`diffctrl_book.ledger.ledger_page`) and report card
    (``book/report_card.md``, included by the opening page), the generated
    execution profile (``book/execution.md``, :func:`diffctrl_book.timings.profile_page`) and
    ``constraints.txt``. Return the site and the notebooks staged without outputs.

    ``profile`` given: every notebook must have been executed with it. Otherwise notebooks
    executed with different profiles are rendered as they are (the build says so), and a
    notebook never executed is staged from its source without outputs (the build says so and
    is not strict). The site mirrors the repository layout, so launch buttons point at the
    committed ``notebooks/<name>.ipynb`` twins.
    """
    import nbformat

    from . import timings
    from .ledger import bib_titles, ledger, ledger_page, rejudge_section, report_card

    build = root / "_build"
    names = list(book_notebooks(root))
    profiles = executed_profiles(root)
    missing = [n for n in names if n not in profiles]
    if profile is not None:
        if missing:
            raise PipelineError(
                f"not executed yet: {missing} (run `diffctrl-book "
                f"execute --profile {profile}` first)"
            )
        wrong = sorted(n for n in names if profiles[n] != profile)
        if wrong:
            raise PipelineError(
                f"executed notebooks {wrong} are not at profile {profile!r}: "
                "re-execute them"
            )
    used: dict[str, list[str]] = {}
    for n in names:
        if n in profiles:
            used.setdefault(profiles[n], []).append(n)
    if len(used) > 1:
        warn(
            "rendering notebooks executed with different profiles: "
            + "; ".join(f"{p}: {', '.join(ns)}" for p, ns in sorted(used.items()))
        )
    if missing:
        warn(
            f"not executed yet, rendered from their sources without outputs: {missing} "
            "(run `diffctrl-book execute` for a complete book)"
        )
    tmp = build / "site.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(root / "book", tmp / "book")
    for fname in ("_config.yml", "_toc.yml", "constraints.txt"):
        if (root / fname).exists():
            shutil.copy2(root / fname, tmp / fname)
    mkdir(tmp / "notebooks")
    for name in names:
        if name in missing:
            nb = read_source(book_notebooks(root, warn_untracked=False)[name])
            for i, cell in enumerate(
                nb.cells
            ):  # stable ids: an unchanged site stays unchanged
                cell["id"] = f"cell-{i}"
            nbformat.write(nb, str(tmp / "notebooks" / f"{name}.ipynb"))
        else:
            shutil.copy2(
                build / "executed" / "notebooks" / f"{name}.ipynb", tmp / "notebooks"
            )
    rows = ledger(build / "results", order=[n for n in names if n not in missing])
    rows = [r for r in rows if r["notebook"] in names and r["notebook"] not in missing]
    keys = _bib_keys(root)
    bib = root / "book" / "references.bib"
    titles = bib_titles(bib.read_text(encoding="utf-8")) if bib.exists() else {}
    page = ledger_page(rows, keys, titles)
    (tmp / REPORT_CARD).write_text(report_card(rows, keys, titles), encoding="utf-8")
    if (
        build / "rejudge"
    ).is_dir():  # the book command's re-run at a seed the book does not use
        again = [
            r for r in ledger(build / "rejudge", order=names) if r["notebook"] in names
        ]
        page += rejudge_section(again, rows)
    (tmp / CLAIMS_PAGE).write_text(page, encoding="utf-8")
    staged = [n for n in names if n not in missing]
    (tmp / PROFILE_PAGE).write_text(
        timings.profile_page(
            timings.profile_rows(build / "executed" / "notebooks", order=staged),
            timings.read_run(build),
        ),
        encoding="utf-8",
    )
    (tmp / "claims.json").write_text(
        json.dumps(rows, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    site = build / "site"
    _keep_mtimes(site, tmp)
    shutil.rmtree(site, ignore_errors=True)
    os.replace(tmp, site)
    return site, missing


def _keep_mtimes(old: Path, new: Path) -> None:
    """Give unchanged staged files their earlier mtime, so Sphinx re-reads only what changed."""
    if not old.exists():
        return
    for path in new.rglob("*"):
        prev = old / path.relative_to(new)
        if path.is_file() and prev.is_file() and prev.read_bytes() == path.read_bytes():
            st = prev.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def site_digest(site: Path) -> str:
    """SHA-256 over every staged file (path and bytes): equal digests render the same book."""
    h = hashlib.sha256()
    for path in sorted(p for p in site.rglob("*") if p.is_file()):
        h.update(
            str(path.relative_to(site)).encode() + b"\0" + path.read_bytes() + b"\0"
        )
    return h.hexdigest()


def publish_extras(root: Path, html: Path) -> None:
    """Copy ``claims.json`` beside the HTML, and the artifacts of ``_build/artifacts/`` that
    the results records name (``<stem>-<key>.<ext>`` whose key a record quotes, e.g. the
    shared digit U-Net's ``unet_key``; stale keys stay behind) to ``_static/artifacts/``
    with a ``SHA256SUMS`` list."""
    site = root / "_build" / "site"
    if (site / "claims.json").exists():
        shutil.copy2(site / "claims.json", html / "claims.json")
    src = root / "_build" / "artifacts"
    dest = html / "_static" / "artifacts"
    shutil.rmtree(dest, ignore_errors=True)
    records = " ".join(
        p.read_text(encoding="utf-8")
        for p in sorted((root / "_build" / "results").glob("*.json"))
    )
    files = (
        sorted(
            p
            for p in src.rglob("*")
            if p.is_file()
            and not p.name.startswith(".")
            and p.stem.rsplit("-", 1)[-1] in records
        )
        if src.is_dir()
        else []
    )
    if not files:
        return
    lines = []
    for path in files:
        rel = path.relative_to(src)
        mkdir((dest / rel).parent)
        shutil.copy2(path, dest / rel)
        lines.append(
            f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {rel.as_posix()}"
        )
    (dest / "SHA256SUMS").write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_book(
    root: Path, profile: str | None = None, strict: bool = True, force: bool = False
) -> Path:
    """Render ``_build/site`` with Jupyter Book (no execution) into ``_build/html``.

    When the staged site is byte-identical to the one the current ``_build/html`` was rendered
    from, Jupyter Book is not run again (``force`` runs it). A site with notebooks that were
    never executed is rendered without ``-W`` (their glued values are missing).
    """
    site, missing = stage_site(root, profile)
    html = root / "_build" / "html"
    stamp = html / ".site-sha256"
    digest = site_digest(site) + ("" if strict and not missing else "-lax")
    if not force and stamp.exists() and stamp.read_text().strip() == digest:
        print(
            "the staged site is unchanged since the last build: _build/html is up to date "
            "(build --force re-renders)",
            flush=True,
        )
        publish_extras(root, html)
        return html
    work = root / "_build" / "jb"
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [
        str(exe) if exe.exists() else "jupyter-book",
        "build",
        str(site),
        "--path-output",
        str(work),
        "--builder",
        "html",
    ]
    if strict and not missing:
        cmd += ["-W", "-n", "--keep-going"]
    elif strict:
        warn("building without -W: some notebooks were not executed")
    print("$", " ".join(cmd), flush=True)
    html_tmp = work / "_build" / "html"
    shutil.rmtree(html_tmp, ignore_errors=True)
    proc = subprocess.run(cmd, cwd=root)
    if proc.returncode != 0 or not (html_tmp / "index.html").exists():
        raise PipelineError(
            f"jupyter-book build failed (exit {proc.returncode}); "
            "the previous _build/html is left as it was"
        )
    old = root / "_build" / "html.old"
    shutil.rmtree(old, ignore_errors=True)
    if html.exists():
        os.replace(html, old)
    os.replace(html_tmp, html)
    shutil.rmtree(old, ignore_errors=True)
    publish_extras(root, html)
    stamp.write_text(digest + "\n")
    return html


def combined_cache_key(root: Path) -> str:
    """One key for the whole execution cache: a SHA-256 over every executed notebook's name and
    cache key (the Pages workflow saves ``_build/executed`` etc. under it)."""
    import nbformat

    h = hashlib.sha256()
    for path in sorted((root / "_build" / "executed" / "notebooks").glob("*.ipynb")):
        key = (
            nbformat.read(str(path), as_version=4)
            .metadata.get("diffctrl", {})
            .get("cache_key")
        )
        h.update(f"{path.stem}={key}\n".encode())
    return h.hexdigest()[:24]
