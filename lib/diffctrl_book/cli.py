"""The ``diffctrl-book`` command (also ``python -m diffctrl_book``), run inside a clone.

::

    diffctrl-book execute --profile smoke [--only NAME ...] [--set key=value ...]
                          [--jobs N] [--force] [--out DIR]
                          [--rejudge NAME ... --rejudge-seed S]
    diffctrl-book build [--profile P] [--no-strict] [--force]   # stage + jupyter-book -W -n
    diffctrl-book verdicts [--results DIR] [--json]              # the claims ledger
    diffctrl-book profile [--executed DIR] [--min-seconds S]     # seconds per notebook, section
    diffctrl-book sync        # Colab cells, "Re-run" boxes, _config.yml, .ipynb twins (jupytext)
    diffctrl-book cache-key   # one key over the executed notebooks' keys (CI's cache)

``--set seed=7`` sets a parameter of the ``parameters`` cell (``seed``, ``device``); any other
key overrides a profile parameter (``--set T=50``). ``--out DIR`` writes the executed notebooks
and their records to ``DIR/<name>.ipynb`` and ``DIR/<name>.json`` and leaves the book's outputs
alone (``verdicts --results DIR`` then judges them).

A notebook source in ``notebooks/`` that ``_toc.yml`` does not list (an untracked draft, say)
is skipped with a warning by every command; a toc entry without a source is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .booktree import PipelineError, book_notebooks, parse_sets, repo_root

__all__ = ["main", "profile", "verdicts"]


def verdicts(
    root: Path | None, results: Path | None = None, as_json: bool = False
) -> str:
    """The claims ledger of the records in ``results`` (default ``_build/results``)."""
    from .ledger import ledger, ledger_text

    folder = Path(results) if results is not None else root / "_build" / "results"
    if not folder.is_dir():
        raise PipelineError(
            f"no results folder {folder} (run `diffctrl-book execute` first, "
            "or pass --results DIR)"
        )
    order = list(book_notebooks(root, warn_untracked=False)) if root else None
    rows = ledger(folder, order=order)
    return json.dumps(rows, indent=2, sort_keys=True) if as_json else ledger_text(rows)


def profile(root: Path, executed: Path | None = None, min_seconds: float = 1.0) -> str:
    """Per-notebook and per-section seconds of the executed notebooks in ``executed``
    (default ``_build/executed/notebooks``; :mod:`.timings`), and the summary of the execute
    run that wrote them (``_build/execution.json``, or ``execution.json`` in an ``--out``
    folder)."""
    from . import timings

    folder = (
        Path(executed)
        if executed is not None
        else root / "_build" / "executed" / "notebooks"
    )
    if not folder.is_dir():
        raise PipelineError(f"no executed notebooks in {folder}")
    order = list(book_notebooks(root, warn_untracked=False))
    rows = timings.profile_rows(folder, order=order)
    if not rows:
        raise PipelineError(f"no executed notebook of the book in {folder}")
    run = timings.read_run(root / "_build" if executed is None else folder)
    return timings.profile_text(rows, run, min_seconds)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffctrl-book",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="execute notebooks with papermill")
    ex.add_argument(
        "--profile",
        default=os.environ.get("PROFILE", "full"),
        help="parameter profile: smoke or full (default $PROFILE or full)",
    )
    ex.add_argument(
        "--only", nargs="*", default=[], help="notebook names (default: all)"
    )
    ex.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="seed=/device= or a profile parameter (JSON values)",
    )
    ex.add_argument(
        "--keep-going", action="store_true", help="run the rest after a failure"
    )
    ex.add_argument("--log-output", action="store_true", help="stream notebook output")
    ex.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("JOBS", "1")),
        help="notebooks executed at once (default $JOBS or 1)",
    )
    ex.add_argument("--force", action="store_true", help="re-execute even when cached")
    ex.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write executed notebooks and records to DIR (the book's untouched)",
    )
    ex.add_argument(
        "--rejudge",
        nargs="*",
        default=[],
        metavar="NAME",
        help="also run these notebooks at --rejudge-seed into _build/rejudge",
    )
    ex.add_argument("--rejudge-seed", type=int, default=3, help="seed of --rejudge")
    pr = sub.add_parser("profile", help="where the execution time went, per section")
    pr.add_argument(
        "--executed",
        type=Path,
        default=None,
        help="folder of executed notebooks (default _build/executed/notebooks)",
    )
    pr.add_argument(
        "--min-seconds",
        type=float,
        default=1.0,
        help="leave out sections shorter than this (default 1)",
    )
    bd = sub.add_parser(
        "build", help="stage the executed notebooks and run jupyter-book"
    )
    bd.add_argument("--profile", default=None, help="require this profile everywhere")
    bd.add_argument("--no-strict", action="store_true", help="do not fail on warnings")
    bd.add_argument(
        "--force", action="store_true", help="render even if nothing changed"
    )
    vd = sub.add_parser("verdicts", help="print the claims ledger from the records")
    vd.add_argument(
        "--results",
        type=Path,
        default=None,
        help="folder of results records (default _build/results)",
    )
    vd.add_argument("--json", action="store_true", help="JSON rows instead of a table")
    sub.add_parser(
        "sync", help="regenerate Colab cells, Re-run boxes, _config.yml and twins"
    )
    sub.add_parser("cache-key", help="one key over every executed notebook's cache key")
    return parser


def _run(args: argparse.Namespace) -> None:
    if args.command == "verdicts":
        try:
            root = repo_root()
        except PipelineError:
            if args.results is None:
                raise
            root = None  # a results folder judged outside a clone
        print(verdicts(root, args.results, args.json))
        return
    root = repo_root()
    if args.command == "execute":
        from .execute import execute_all

        out = args.out
        if out is not None and not out.is_absolute():
            out = Path.cwd() / out
        execute_all(
            root,
            args.profile,
            args.only,
            parse_sets(args.set),
            args.keep_going,
            args.log_output,
            args.jobs,
            force=args.force,
            out_dir=out,
            rejudge=args.rejudge,
            rejudge_seed=args.rejudge_seed,
        )
    elif args.command == "profile":
        print(profile(root, args.executed, args.min_seconds))
    elif args.command == "build":
        from .site import build_book

        print(
            build_book(root, args.profile, strict=not args.no_strict, force=args.force)
        )
    elif args.command == "sync":
        from .sync import sync_all

        for path in sync_all(root):
            print("wrote", path.relative_to(root))
    elif args.command == "cache-key":
        from .site import combined_cache_key

        print(combined_cache_key(root))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; errors print one line (exit 1)."""
    args = _parser().parse_args(argv)
    # clean up temp folders on kill
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        _run(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
