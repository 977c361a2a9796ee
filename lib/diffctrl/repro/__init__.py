"""The notebook harness: what a chapter's notebook uses besides the algorithms.

- :mod:`~diffctrl.repro.profiles`: parameter profiles (``smoke`` for CI, ``full`` for the book);
- :mod:`~diffctrl.repro.claims`: claims declared before computing (whose claim, baseline,
  positive control), and the rule that turns per-seed outcomes into a verdict with its reason;
- :mod:`~diffctrl.repro.tables`: the tables a page shows of its claims and verdicts, and its
  one-line finding;
- :mod:`~diffctrl.repro.record`: the results record (every headline number and verdict, glued
  for the prose and saved as JSON);
- :mod:`~diffctrl.repro.runtime`: devices, seeds, and the versions a result was produced with.

Algorithm modules never import it; a chapter's ``experiments`` / ``analysis`` module may (it
judges claims), and so may the notebooks. The book's build tool (``diffctrl_book``) reads the
records this harness writes.
"""

from .claims import (
    CAUSES,
    KINDS,
    NEGATIVE,
    POSITIVE,
    VERDICTS,
    WHY,
    Claim,
    Diagnosis,
    Judgement,
    adjudicate,
    check_verdict,
    count_verdict,
    judge,
)
from .profiles import PROFILE_NAMES, Profile, select_profile
from .record import RESULTS_ENV, Outcome, Record, load, results_dir, to_jsonable
from .runtime import environment, make_generator, pick_device, seed_everything
from .tables import (
    ClaimsTable,
    VerdictTable,
    claims_table,
    findings_sentence,
    verdict_html,
    verdict_markdown,
)

__all__ = [
    "CAUSES",
    "KINDS",
    "NEGATIVE",
    "POSITIVE",
    "PROFILE_NAMES",
    "RESULTS_ENV",
    "VERDICTS",
    "WHY",
    "Claim",
    "ClaimsTable",
    "Diagnosis",
    "Judgement",
    "Outcome",
    "Profile",
    "Record",
    "VerdictTable",
    "check_verdict",
    "claims_table",
    "count_verdict",
    "environment",
    "findings_sentence",
    "judge",
    "adjudicate",
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
