"""The formats a graph is exported in, and where each goes: a light module (no networkx, no plotly), so
that `mmre`'s argument parser reads its `--format` choices without importing the graph package."""

from __future__ import annotations

from typing import Literal, get_args

GraphFormat = Literal["json", "csv", "graphml", "rdf", "neo4j"]
GRAPH_FORMATS: tuple[GraphFormat, ...] = get_args(GraphFormat)
NEO4J_FOLDER = "neo4j"  # neo4j is a folder of three files (`graph/neo4j_csv.py`); `mmre extract` writes it here
# the file each format is written to (neo4j: the folder; the app offers it as <stem>_neo4j.zip: a browser
# downloads files, not folders)
FORMAT_SUFFIX: dict[GraphFormat, str] = {"json": ".json", "csv": ".csv", "graphml": ".graphml", "rdf": ".ttl",
                                         "neo4j": ""}
