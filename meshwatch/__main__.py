"""``python -m meshwatch`` runs the CLI."""

from meshwatch.cli import main

raise SystemExit(main())
