"""`lupa`: the command line. Every pipeline command runs through Dagster on the configured instance,
so what it does is recorded where the UI shows it. Each sub-command is a module of
`pipelines.commands`; this one only builds the parser from them and runs the one asked for."""

from __future__ import annotations

import argparse
import sys

from pipelines.commands import campaign, decisions, demo_data, erase, explain, runs, sar, summary
from pipelines.settings import ConfigurationError

#: in the order `lupa --help` lists them
COMMANDS = (demo_data, runs, explain, decisions, campaign, erase, sar, summary)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lupa", description="Lupa: consent-aware segmentation and marketing audiences")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except ConfigurationError as exc:
        print(f"lupa: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
