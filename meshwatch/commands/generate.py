"""``meshwatch generate --out DIR``: write rules, dashboards and the stack from the settings."""

from __future__ import annotations

import argparse
from pathlib import Path

from meshwatch.generated import GeneratedFile, check_unique, write_tree
from meshwatch.settings import Settings, load_settings


def render_all(settings: Settings, out_dir: Path | None = None) -> list[GeneratedFile]:
    """Every generated file, from the one settings object.

    ``out_dir`` is the current output, if any: the stack generator reuses the
    Grafana password it wrote there before, so regenerating does not lock the
    user out.
    """
    from meshwatch import alerts, dashboards, stack

    return check_unique(
        [
            *alerts.render(settings),
            *dashboards.render(settings),
            *stack.render(settings, previous=out_dir),
        ]
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    out_dir = Path(args.out)
    files = render_all(settings, out_dir if out_dir.is_dir() else None)
    write_tree(files, out_dir)
    print(f"wrote {len(files)} files to {out_dir}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write alert rules, dashboards and the stack's configuration",
        description=run.__doc__ or __doc__,
    )
    parser.add_argument("--out", required=True, help="output directory (replaced atomically)")
    parser.add_argument(
        "--config", default=None, help="settings file (default: ./meshwatch.yaml if present)"
    )
    parser.set_defaults(func=run)
