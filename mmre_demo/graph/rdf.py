"""The graph as RDF (Turtle, written with rdflib), in a small vocabulary of ours.

- an entity is an `mmre:Entity` with `rdfs:label` (its name) and `mmre:entityType` ("PER", ...);
- a relation is a property `rel:per_org_member_of` (`a rdf:Property, mmre:Relation`, its MNRE label as
  `rdfs:label`), asserted between the two entities;
- what the graph knows about a relation (probability, source, count, posts) is said of an
  `rdf:Statement` that names the triple (standard RDF reification: rdf:subject / rdf:predicate /
  rdf:object). RDF-star (`<< s p o >> mmre:probability 0.9`) would be shorter, but rdflib 7 (7.6.0)
  refuses `<< ... >>` in Turtle as bad syntax, and so would any tool before RDF 1.2; reification reads
  everywhere;
- a post is an `mmre:Post` with `mmre:caption`, linked from each statement it produced by `mmre:post`.

The same relation edges as the Neo4j files (`graph/neo4j_csv.py`): entities and the relations between
them at the threshold, predicted, annotated and suggested; no image nodes. IRIs live under
`https://mmre-demo.invalid/` (`.invalid` is reserved, RFC 2606: they name things, they resolve nowhere).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import networkx as nx

from mmre_demo.graph.store import ENTITY_KIND, POSTS, SOURCES, posts_table, relation_edges

if TYPE_CHECKING:  # rdflib is imported when a file is written: `import mmre_demo.graph` stays light
    import rdflib

BASE = "https://mmre-demo.invalid/"
VOCAB, ENTITY_NS, RELATION_NS, POST_NS = (BASE + "vocab#", BASE + "entity/", BASE + "relation/", BASE + "post/")
PREFIXES = {"mmre": VOCAB, "ent": ENTITY_NS, "rel": RELATION_NS, "post": POST_NS}


@dataclass(frozen=True)
class RdfExport:
    """The Turtle text and what it holds."""

    turtle: str
    relations: int  # asserted entity-relation-entity triples (one rdf:Statement each)
    rdf_triples: int  # every triple of the file


def entity_iri(node: str) -> str:
    return ENTITY_NS + quote(str(node), safe="")


def post_iri(post_id: str) -> str:
    return POST_NS + quote(str(post_id), safe="")


def relation_local_name(relation: str) -> str:
    """`/per/org/member_of` -> `per_org_member_of` (the whole label: no two relations share it)."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", str(relation)).strip("_") or "related_to"


def relation_iri(relation: str) -> str:
    return RELATION_NS + relation_local_name(relation)


def rdf_graph(g: nx.MultiDiGraph, threshold: float = 0.0) -> rdflib.Graph:
    from rdflib import RDF, RDFS, XSD, BNode, Graph, Literal, Namespace, URIRef

    mmre = Namespace(VOCAB)
    out = Graph()
    for prefix, ns in PREFIXES.items():
        out.bind(prefix, ns)
    edges = sorted(relation_edges(g, threshold, SOURCES), key=lambda e: (e[0], e[2]["relation"], e[1]))
    ends = {n for u, v, _ in edges for n in (u, v)}
    for n, d in sorted(g.nodes(data=True)):
        if d.get("kind") != ENTITY_KIND and n not in ends:
            continue
        e = URIRef(entity_iri(n))
        out.add((e, RDF.type, mmre["Entity"]))
        out.add((e, RDFS.label, Literal(str(d.get("name", n)))))
        if d.get("type"):
            out.add((e, mmre["entityType"], Literal(str(d["type"]))))
    posts, used_posts = posts_table(g), set()
    for relation in sorted({d["relation"] for _, _, d in edges}):
        p = URIRef(relation_iri(relation))
        out.add((p, RDF.type, RDF.Property))
        out.add((p, RDF.type, mmre["Relation"]))
        out.add((p, RDFS.label, Literal(relation)))
    for u, v, d in edges:
        s, p, o = URIRef(entity_iri(u)), URIRef(relation_iri(d["relation"])), URIRef(entity_iri(v))
        out.add((s, p, o))
        st = BNode()
        out.add((st, RDF.type, RDF.Statement))
        out.add((st, RDF.subject, s))
        out.add((st, RDF.predicate, p))
        out.add((st, RDF.object, o))
        out.add((st, mmre["probability"], Literal(round(float(d.get("score", 0.0)), 6), datatype=XSD.double)))
        out.add((st, mmre["source"], Literal(str(d.get("source", "")))))
        out.add((st, mmre["count"], Literal(int(d.get("count", 1)), datatype=XSD.integer)))
        for post in d.get(POSTS) or []:
            out.add((st, mmre["post"], URIRef(post_iri(post))))
            used_posts.add(str(post))
    for post in sorted(used_posts):
        r = URIRef(post_iri(post))
        out.add((r, RDF.type, mmre["Post"]))
        out.add((r, RDFS.label, Literal(post)))
        if isinstance(posts.get(post), dict) and posts[post].get("caption") is not None:
            out.add((r, mmre["caption"], Literal(str(posts[post]["caption"]))))
    return out


def rdf_export(g: nx.MultiDiGraph, threshold: float = 0.0) -> RdfExport:
    rg = rdf_graph(g, threshold)
    relations = len(relation_edges(g, threshold, SOURCES))
    return RdfExport(rg.serialize(format="turtle"), relations, len(rg))


def to_turtle(g: nx.MultiDiGraph, threshold: float = 0.0) -> str:
    return rdf_export(g, threshold).turtle
