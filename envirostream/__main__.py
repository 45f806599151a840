"""``python -m envirostream`` = the ``envirostream`` command."""

from envirostream.cli import main

raise SystemExit(main())
