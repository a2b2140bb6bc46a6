"""`mmre` command line. Each concern registers its own subcommands from its own module:

- `mmre_demo.cli.relation`: predict, train, calibrate, eval
- `mmre_demo.cli.ner`: ner, train-ner, eval-ner
- `mmre_demo.cli.kge`: kge train, kge eval, kge suggest
- `mmre_demo.cli.extract`: extract
- `mmre_demo.cli.review`: review open, review list, review walk
- `mmre_demo.cli.annotations`: annotations export, annotations import, annotations stats
- `mmre_demo.cli.graph`: graph export (a graph file as Neo4j import files, RDF, GraphML, JSON, CSV)
- `mmre_demo.cli.label_studio`: label-studio-backend (the model as a Label Studio ML backend)

A subcommand handler returns an int exit code; an InputError / DataFormatError becomes a one-line
message on stderr and exit code 2 (never a traceback). Progress messages of the library (training
epochs, ...) go to stderr through `logging` (`mmre_demo.logs`); results go to stdout.
Defaults of the training options come from the config dataclasses, so `--help` and the code agree.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

_COMMAND_MODULES = ("mmre_demo.cli.relation", "mmre_demo.cli.ner", "mmre_demo.cli.kge", "mmre_demo.cli.extract",
                    "mmre_demo.cli.review", "mmre_demo.cli.annotations", "mmre_demo.cli.graph",
                    "mmre_demo.cli.label_studio")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmre", description="Multimodal relation extraction demo")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from mmre_demo.data.mnre import DataFormatError
    from mmre_demo.data.schema import InputError
    from mmre_demo.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        return int(args.handler(args) or 0)
    except (InputError, DataFormatError, FileNotFoundError) as exc:
        print(f"mmre {args.command}: error: {exc}", file=sys.stderr)
        return 2
