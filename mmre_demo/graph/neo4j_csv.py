"""The graph as Neo4j 5 import files: `nodes.csv` + `relationships.csv` in the header format of
`neo4j-admin database import full`, and `load.cypher`, which reads the same two files with
`LOAD CSV WITH HEADERS` + `MERGE` for a database that is already running.

Header format (Neo4j operations manual, "Import header format"): every field is `name:type`, the type
one of `NEO4J_PROPERTY_TYPES` (no type = string) with `[]` for an array whose values are split by `;`
(the default `--array-delimiter`); a node file has one `name:ID` and a `:LABEL` field (labels split by
`;`), a relationship file `:START_ID`, `:END_ID` and `:TYPE`. One set of files serves both loaders:
LOAD CSV keys each row by its header text, so load.cypher reads the columns as row.`id:ID` and so on.

What goes in: every entity node, and the relations between entities at the threshold (predicted,
annotated and suggested, each with its `source`: the relation edges of the JSON / GraphML exports). The
image nodes and their `depicts` / `shows text of` edges stay out: they draw the app's picture, they are
no facts about the entities.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from mmre_demo.graph.store import ENTITY_KIND, POST_SCORES, POSTS, SOURCES, relation_edges

NODES_CSV, RELATIONSHIPS_CSV, LOAD_CYPHER = "nodes.csv", "relationships.csv", "load.cypher"
ARRAY_DELIMITER = ";"  # neo4j-admin's default --array-delimiter (and the :LABEL separator)
ENTITY_LABEL = "Entity"  # every node's label; the entity type (PER, ORG, ...) is a second label
CONSTRAINT = "mmre_entity_id"
# the documented property types of the header format (an array type appends "[]")
NEO4J_PROPERTY_TYPES = ("int", "long", "float", "double", "boolean", "byte", "short", "char", "string", "point",
                        "date", "localtime", "time", "localdatetime", "datetime", "duration", "vector")
NODE_HEADER = ("id:ID", "name", "type", ":LABEL")
RELATIONSHIP_HEADER = (":START_ID", ":END_ID", ":TYPE", "relation", "probability:float", "source", "count:int",
                       "post_ids:string[]", "post_scores:float[]")


@dataclass(frozen=True)
class Neo4jExport:
    """The three files (name -> text) and what they hold."""

    files: dict[str, str]
    nodes: int
    relationships: int
    relationship_types: tuple[str, ...]


def neo4j_name(text: str, fallback: str) -> str:
    """A label or relationship type Cypher takes without quoting: upper snake case of [A-Z0-9_]."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_").upper()
    if not name:
        return fallback
    return f"_{name}" if name[0].isdigit() else name


def relationship_type(relation: str) -> str:
    """`/per/org/member_of` -> `MEMBER_OF` (the full label stays in the `relation` property: two labels
    may share the last part, `/per/per/alternate_names` and `/org/org/alternate_names`)."""
    return neo4j_name(str(relation).rstrip("/").rsplit("/", 1)[-1], "RELATED_TO")


def _cell(value: Any) -> str:
    """One field: a line break would need `--multiline-fields`, so it becomes a space."""
    return re.sub(r"[\r\n]+", " ", "" if value is None else str(value))


def _array(values: Iterable[Any]) -> str:
    """An array field; a `;` inside a value would split it, so it is written as `,`."""
    return ARRAY_DELIMITER.join(_cell(v).replace(ARRAY_DELIMITER, ",") for v in values)


def _csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")  # quotes with "..." and doubles a quote inside: neo4j-admin's default
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def neo4j_export(g: nx.MultiDiGraph, threshold: float = 0.0) -> Neo4jExport:
    edges = sorted(relation_edges(g, threshold, SOURCES), key=lambda e: (e[0], e[2]["relation"], e[1]))
    ends = {n for u, v, _ in edges for n in (u, v)}
    nodes = sorted(n for n, d in g.nodes(data=True) if d.get("kind") == ENTITY_KIND or n in ends)
    node_rows = []
    for n in nodes:
        d = g.nodes[n]
        etype = str(d.get("type") or "")
        labels = [ENTITY_LABEL] + ([neo4j_name(etype, "")] if neo4j_name(etype, "") else [])
        node_rows.append([_cell(n), _cell(d.get("name", n)), _cell(etype), ARRAY_DELIMITER.join(labels)])
    rel_rows = [[_cell(u), _cell(v), relationship_type(d["relation"]), _cell(d["relation"]),
                 repr(round(float(d.get("score", 0.0)), 6)), _cell(d.get("source", "")), str(int(d.get("count", 1))),
                 _array(d.get(POSTS) or []), _array(repr(float(s)) for s in d.get(POST_SCORES) or [])]
                for u, v, d in edges]
    types = tuple(sorted({r[2] for r in rel_rows}))
    extra_labels = sorted({lab for r in node_rows for lab in r[3].split(ARRAY_DELIMITER)} - {ENTITY_LABEL})
    files = {NODES_CSV: _csv(NODE_HEADER, node_rows), RELATIONSHIPS_CSV: _csv(RELATIONSHIP_HEADER, rel_rows),
             LOAD_CYPHER: load_cypher(extra_labels, types)}
    return Neo4jExport(files, len(node_rows), len(rel_rows), types)


def load_cypher(labels: Iterable[str], types: Iterable[str]) -> str:
    """Cypher that loads nodes.csv and relationships.csv from Neo4j's import folder. MERGE on the node id
    (unique by a constraint made first) and on (start, type, relation, end): running it again adds nothing.
    Plain Cypher takes no label or relationship type from a value, so each one present gets its statement."""
    nodes, rels = f"LOAD CSV WITH HEADERS FROM 'file:///{NODES_CSV}' AS row", \
        f"LOAD CSV WITH HEADERS FROM 'file:///{RELATIONSHIPS_CSV}' AS row"
    out = ["// The mmre_demo graph into a running Neo4j 5 (instead of `neo4j-admin database import full`):",
           f"// copy {NODES_CSV} and {RELATIONSHIPS_CSV} into the database's import folder, then",
           f"// cypher-shell -u neo4j -p PASSWORD -f {LOAD_CYPHER}. Every write is a MERGE: a second run adds nothing.",
           f"CREATE CONSTRAINT {CONSTRAINT} IF NOT EXISTS FOR (n:{ENTITY_LABEL}) REQUIRE n.id IS UNIQUE;",
           "",
           f"{nodes}\nMERGE (n:{ENTITY_LABEL} {{id: row.`id:ID`}})\nSET n.name = row.name, n.type = row.type;"]
    for label in labels:
        out += ["", f"{nodes}\nWITH row WHERE '{label}' IN split(row.`:LABEL`, '{ARRAY_DELIMITER}')\n"
                    f"MATCH (n:{ENTITY_LABEL} {{id: row.`id:ID`}})\nSET n:{label};"]
    for rtype in types:
        out += ["", f"{rels}\nWITH row WHERE row.`:TYPE` = '{rtype}'\n"
                    f"MATCH (a:{ENTITY_LABEL} {{id: row.`:START_ID`}}), (b:{ENTITY_LABEL} {{id: row.`:END_ID`}})\n"
                    f"MERGE (a)-[r:{rtype} {{relation: row.relation}}]->(b)\n"
                    "SET r.probability = toFloat(row.`probability:float`), r.source = row.source, "
                    "r.count = toInteger(row.`count:int`),\n"
                    f"    r.post_ids = split(row.`post_ids:string[]`, '{ARRAY_DELIMITER}'),\n"
                    f"    r.post_scores = [x IN split(row.`post_scores:float[]`, '{ARRAY_DELIMITER}') | toFloat(x)];"]
    return "\n".join(out) + "\n"
