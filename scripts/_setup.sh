# Sourced by build_book.sh and test.sh: make (once) and activate .venv, install the package.
# Needs only Python 3.10+ with pip. TORCH_SPEC picks the torch build (default: the 2.13.0 release;
# set e.g. TORCH_SPEC="torch" to take whatever pip resolves).
set -euo pipefail
PY="${PYTHON:-python3}"
if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$PY" -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi
if [ "${SKIP_INSTALL:-0}" != "1" ]; then
  echo "== installing torch (${TORCH_SPEC:-torch==2.13.0}) and diffctrl[${EXTRAS:-test}]"
  # shellcheck disable=SC2086  # TORCH_SPEC may carry pip options (e.g. --index-url)
  python -m pip install -q --disable-pip-version-check ${TORCH_SPEC:-torch==2.13.0}
  python -m pip install -q --disable-pip-version-check -e ".[${EXTRAS:-test}]"
fi
python -m ipykernel install --sys-prefix --name python3 >/dev/null
