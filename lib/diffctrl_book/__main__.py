"""``python -m diffctrl_book`` = the ``diffctrl-book`` command (:mod:`.cli`)."""

from .cli import main

raise SystemExit(main())
