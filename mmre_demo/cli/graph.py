"""`mmre graph export GRAPH --format neo4j|rdf|graphml|json|csv [--out PATH] [--threshold X]`: a graph file
already written (graph.json / graph.graphml of `mmre extract` or of the app's Export) in another format,
e.g. for Neo4j or an RDF store, without running the model again."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmre_demo.graph_formats import FORMAT_SUFFIX, GRAPH_FORMATS, NEO4J_FOLDER, GraphFormat


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("graph", help="convert a graph file of `mmre extract` or the app (Neo4j, RDF, ...)")
    gsub = p.add_subparsers(dest="graph_command", required=True)
    e = gsub.add_parser("export", help="write a graph.json / graph.graphml in another format",
                        description="neo4j: a folder with nodes.csv, relationships.csv (neo4j-admin database "
                                    "import full) and load.cypher (LOAD CSV + MERGE); rdf: Turtle; graphml, json, "
                                    "csv: the app's own exports.")
    e.add_argument("graph", help="graph.json or graph.graphml (of `mmre extract` or the app's Export)")
    e.add_argument("--format", dest="fmt", required=True, choices=GRAPH_FORMATS)
    e.add_argument("--out", help=f"file to write (a folder for neo4j); default: beside GRAPH, {NEO4J_FOLDER}/ for "
                                 "neo4j, else GRAPH's name with the format's extension (.ttl for rdf)")
    e.add_argument("--threshold", type=float, default=0.0,
                   help="keep relations of at least this probability (default 0: every relation of the file, "
                        "which holds those at its own export threshold; annotated ones always)")
    e.set_defaults(handler=cmd_export)


def default_out(graph: Path, fmt: GraphFormat) -> Path:
    if fmt == "neo4j":
        return graph.parent / NEO4J_FOLDER
    return graph.with_suffix(FORMAT_SUFFIX[fmt])


def cmd_export(args: argparse.Namespace) -> int:
    from mmre_demo.data.schema import InputError
    from mmre_demo.graph.export import write_format
    from mmre_demo.graph.importer import read_graph
    from mmre_demo.graph.store import SOURCES, relation_edges

    if not 0.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold must be in [0, 1], got {args.threshold}")
    src = Path(args.graph)
    out = Path(args.out) if args.out else default_out(src, args.fmt)
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise InputError(f"{out} is the input graph file; give another --out")
    if args.fmt == "neo4j" and out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: a file; neo4j writes a folder (nodes.csv, relationships.csv, load.cypher)")
    if args.fmt != "neo4j" and out.is_dir():
        raise InputError(f"--out {out}: a folder; {args.fmt} writes one file")
    g = read_graph(src)
    try:
        paths = write_format(g, args.fmt, out, args.threshold)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    n = len(relation_edges(g, args.threshold, SOURCES))
    print(f"{n} relations (threshold {args.threshold:.2f}) of {src} as {args.fmt}: {', '.join(paths)}")
    return 0
