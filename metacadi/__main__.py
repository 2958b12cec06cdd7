"""``python -m metacadi``: the command line (see :mod:`metacadi.cli`)."""

from .cli import main

raise SystemExit(main())
