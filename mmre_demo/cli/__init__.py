"""`mmre` command line. Each concern registers its own subcommands from its own module:

- `mmre_demo.cli.relation`: predict, train, eval
- `mmre_demo.cli.ner`: ner, train-ner, eval-ner
- `mmre_demo.cli.kge`: kge train, kge eval, kge suggest

A subcommand handler returns an int exit code; an InputError / DataFormatError becomes a one-line
message on stderr and exit code 2 (never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

_COMMAND_MODULES = ("mmre_demo.cli.relation", "mmre_demo.cli.ner", "mmre_demo.cli.kge", "mmre_demo.cli.extract")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmre", description="Multimodal relation extraction demo")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a concern not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from mmre_demo.data.mnre import DataFormatError
    from mmre_demo.data.schema import InputError

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (InputError, DataFormatError, FileNotFoundError) as exc:
        print(f"mmre {args.command}: error: {exc}", file=sys.stderr)
        return 2
