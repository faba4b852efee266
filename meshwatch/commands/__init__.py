"""CLI subcommands, one module each; see :mod:`meshwatch.cli`."""
