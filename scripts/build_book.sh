#!/usr/bin/env bash
# Build the whole book: install, execute every notebook with papermill, render _build/html.
#   bash scripts/build_book.sh                 # full profile (the published book)
#   PROFILE=smoke bash scripts/build_book.sh   # smoke profile (minutes, what CI renders)
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-full}"
EXTRAS="${EXTRAS:-book}"
source scripts/_setup.sh
echo "== executing notebooks (profile: $PROFILE)"
python -m diffctrl.pipeline execute --profile "$PROFILE"
echo "== rendering the book"
python -m diffctrl.pipeline build --profile "$PROFILE"
echo "== done: open _build/html/index.html"
