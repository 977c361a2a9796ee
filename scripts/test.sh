#!/usr/bin/env bash
# Run every test: install; check the notebook twins (what jupytext writes from each source);
# execute every notebook (smoke profile) with
# papermill; render the book with jupyter-book -W -n; then one pytest run over the unit tests,
# the results records, the rendered HTML and (nbval) the executed notebooks. JOBS=N sets how
# many notebooks / test files run at once (default: the number of cores, at most 4).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh
# notebooks and test files run JOBS at a time, one thread each (no oversubscription)
JOBS="${JOBS:-$(python -c 'import os; print(min(4, os.cpu_count() or 1))')}"
export OMP_NUM_THREADS=1 JOBS
echo "== notebook twins (each .ipynb is what \`jupytext --sync\` writes from its source)"
python -m pytest -q -p no:cacheprovider \
  "tests/book/test_structure.py::test_twins_are_what_jupytext_writes"
echo "== executing notebooks (profile: smoke)"
diffctrl-book execute --profile smoke
echo "== rendering the book (smoke outputs)"
diffctrl-book build --profile smoke
echo "== pytest: unit tests, results records, rendered book, nbval"
export DIFFCTRL_REQUIRE_BOOK=1
export DIFFCTRL_RESULTS_DIR="$PWD/_build/nbval-results"
set +e
python -m pytest tests _build/executed/notebooks --nbval-lax -p no:cacheprovider \
  -n "$JOBS" --dist loadfile "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
