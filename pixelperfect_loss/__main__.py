"""``python -m pixelperfect_loss``: the ``pixelperfect`` command line (:mod:`pixelperfect_loss.cli`)."""

from .cli import main

raise SystemExit(main())
