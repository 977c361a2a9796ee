"""``python -m diffctrl_book`` = the ``diffctrl-book`` command."""

from .pipeline import main

raise SystemExit(main())
