"""Write constraints.txt: the exact versions that built the published book.

    python scripts/freeze_constraints.py            # from the active environment
    python scripts/freeze_constraints.py --check    # exit 1 if constraints.txt is out of date

Takes what ``pip freeze`` reports, filtered to what the project installs (the dependencies of
``diffctrl[test]`` and of the build tool ``lib/diffctrl_book``, followed through each installed
distribution's own requirements), with
local version labels dropped (``torch==2.13.0+cpu`` -> ``torch==2.13.0``, which the CPU and CUDA
wheels both satisfy). The book command and CI install with ``-c constraints.txt``; set
``CONSTRAINTS=`` (empty) to opt out.

Why a freeze and not ``pip-compile`` / ``uv pip compile``: the file records the environment that
actually built and tested the published book (every version the book's numbers were produced
with), not a fresh resolution against today's index, which could pick versions no build has
run; and it drops torch's local label, which a resolver would keep for one wheel index.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from diffctrl_book import deps  # noqa: E402

HEADER = """\
# The versions that built the published book (Python {python}), generated from the build
# environment by `python scripts/freeze_constraints.py`: what `pip freeze` reports, filtered to
# what diffctrl[test] and the build tool (lib/diffctrl_book) install. scripts/_setup.sh
# installs with `-c constraints.txt`; set CONSTRAINTS= (empty) to let pip resolve freely.
"""


__all__ = ["frozen", "main", "render"]


def frozen() -> dict[str, str]:
    """``{canonical name: "name==version"}`` of the active environment (editables left out)."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = {}
    for line in out.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s+;]+)", line)
        if m:
            pins[deps.canonical(m.group(1))] = f"{m.group(1)}=={m.group(2)}"
    return pins


def render() -> str:
    """The text of constraints.txt for the active environment."""
    wanted = deps.installed_closure(
        deps.extras_closure(ROOT, ["test"])
        | deps.extras_closure(ROOT, project="lib/diffctrl_book")
    )
    wanted -= {"diffctrl", "diffctrl-book", "pip", "setuptools", "wheel"}
    pins = frozen()
    lines = [pins[d] for d in sorted(wanted) if d in pins]
    return (
        HEADER.format(python=".".join(map(str, sys.version_info[:2])))
        + "\n".join(lines)
        + "\n"
    )


def main() -> int:
    """Write constraints.txt (or, with ``--check``, compare it); return the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help="fail if constraints.txt differs"
    )
    args = parser.parse_args()
    text, path = render(), ROOT / "constraints.txt"
    if args.check:
        if not path.exists() or path.read_text() != text:
            print(
                "constraints.txt is out of date: run python scripts/freeze_constraints.py",
                file=sys.stderr,
            )
            return 1
        print("constraints.txt is up to date")
        return 0
    path.write_text(text)
    print(
        f"wrote {path.relative_to(ROOT)} ({text.count(chr(10)) - HEADER.count(chr(10))} pins)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
