# Sourced by build_book.sh and test.sh: make (once) and activate .venv, install diffctrl and the
# book's build tool (lib/diffctrl_book, the `diffctrl-book` command).
# Needs only Python 3.10+ with pip. TORCH_SPEC picks the torch build (default: the 2.13.0 release;
# set e.g. TORCH_SPEC="torch" to take whatever pip resolves). Installs with -c constraints.txt,
# the versions that built the published book; CONSTRAINTS= (empty) opts out, CONSTRAINTS=<file>
# uses another file.
set -euo pipefail
PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
fi
CONSTRAINTS="${CONSTRAINTS-constraints.txt}"
PIN=()
if [ -n "$CONSTRAINTS" ]; then
  PIN=(-c "$CONSTRAINTS")
fi
if [ "${SKIP_INSTALL:-0}" != "1" ]; then
  echo "== installing torch (${TORCH_SPEC:-torch==2.13.0}) and diffctrl[${EXTRAS:-test}]" \
       "(constraints: ${CONSTRAINTS:-none})"
  # torch without the constraints: TORCH_SPEC pins it, and its --index-url (the CPU wheels)
  # need not carry the pinned versions of torch's own dependencies; the next step pins those
  # shellcheck disable=SC2086  # TORCH_SPEC may carry pip options (e.g. --index-url)
  python -m pip install -q --disable-pip-version-check ${TORCH_SPEC:-torch==2.13.0}
  # diffctrl (what a reader installs) and, beside it, the book's build tool (diffctrl-book)
  python -m pip install -q --disable-pip-version-check "${PIN[@]}" -e ".[${EXTRAS:-test}]" \
    -e lib/diffctrl_book
fi
python -m ipykernel install --sys-prefix --name python3 >/dev/null
