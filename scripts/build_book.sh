#!/usr/bin/env bash
# Build the whole book: install, execute every notebook with papermill, check the results
# records, render _build/html.
#   bash scripts/build_book.sh                 # full profile (the published book)
#   PROFILE=smoke bash scripts/build_book.sh   # smoke profile (minutes, what CI renders)
# EXTRAS=book installs what the notebooks import (pyproject.toml; a test checks it). Notebooks
# run JOBS at a time (default: the cores, at most 4) with the cores split between them; a
# notebook whose inputs did not change since its last execution is reused (FORCE=1 re-runs all).
set -euo pipefail
cd "$(dirname "$0")/.."
# when the command started (install included): the execution profile page reports it
export DIFFCTRL_BOOK_START="${DIFFCTRL_BOOK_START:-$(date +%s)}"
PROFILE="${PROFILE:-full}"
EXTRAS="${EXTRAS:-book}"
source scripts/_setup.sh
JOBS="${JOBS:-$(python -c 'import os; print(max(1, min(4, os.cpu_count() or 1)))')}"
export JOBS
FORCE_FLAG=()
if [ "${FORCE:-0}" = "1" ]; then
  FORCE_FLAG=(--force)
fi
# The published (full) book also shows one chapter re-judged at a seed it does not use, on the
# claims ledger page, run in the same pool as the notebooks (REJUDGE= skips it; REJUDGE_SEED
# picks the seed, default 3).
REJUDGE="${REJUDGE-nearly_lq}"
REJUDGE_FLAG=()
if [ "$PROFILE" = "full" ] && [ -n "$REJUDGE" ]; then
  # shellcheck disable=SC2206  # REJUDGE may name several notebooks
  REJUDGE_FLAG=(--rejudge $REJUDGE --rejudge-seed "${REJUDGE_SEED:-3}")
fi
echo "== executing notebooks (profile: $PROFILE, $JOBS at a time)"
diffctrl-book execute --profile "$PROFILE" --jobs "$JOBS" \
  "${FORCE_FLAG[@]}" "${REJUDGE_FLAG[@]}"
echo "== checking the results records (tests/notebooks, profile: $PROFILE)"
DIFFCTRL_REQUIRE_BOOK=1 python -m pytest tests/notebooks -q -p no:cacheprovider
echo "== rendering the book"
diffctrl-book build --profile "$PROFILE"
echo "== where the time went (diffctrl-book profile)"
diffctrl-book profile --min-seconds 10
echo "== done: open _build/html/index.html"
