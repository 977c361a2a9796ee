"""The notebook harness: what a chapter's notebook uses besides the algorithms.

- :mod:`~diffctrl.repro.profiles`: parameter profiles (``smoke`` for CI, ``full`` for the book);
- :mod:`~diffctrl.repro.claims`: claims declared before computing (and the table a page shows
  of them, :func:`~diffctrl.repro.claims.claims_table`), and the rule that turns per-seed
  outcomes into a verdict;
- :mod:`~diffctrl.repro.record`: the results record (every headline number and verdict, glued
  for the prose and saved as JSON);
- :mod:`~diffctrl.repro.runtime`: devices, seeds, and the versions a result was produced with.

Algorithm modules never import it; a chapter's ``experiments`` / ``analysis`` module may (it
judges claims), and so may the notebooks. The book's build tool (``diffctrl_book``) reads the
records this harness writes.
"""

from .claims import (
    POSITIVE,
    VERDICTS,
    Claim,
    ClaimsTable,
    VerdictTable,
    check_verdict,
    claims_table,
    count_verdict,
    judge,
    verdict_html,
    verdict_markdown,
)
from .profiles import PROFILE_NAMES, Profile, select_profile
from .record import RESULTS_ENV, Record, load, results_dir, to_jsonable
from .runtime import environment, make_generator, pick_device, seed_everything

__all__ = [
    "POSITIVE",
    "PROFILE_NAMES",
    "RESULTS_ENV",
    "VERDICTS",
    "Claim",
    "ClaimsTable",
    "Profile",
    "Record",
    "VerdictTable",
    "check_verdict",
    "claims_table",
    "count_verdict",
    "environment",
    "judge",
    "load",
    "make_generator",
    "pick_device",
    "results_dir",
    "seed_everything",
    "select_profile",
    "to_jsonable",
    "verdict_html",
    "verdict_markdown",
]
