"""Graph exports where graphs live: Neo4j import files (checked against the documented header format of
`neo4j-admin database import full`, and load.cypher against the files' headers) and RDF Turtle (parsed
with rdflib and queried with SPARQL); written into every `mmre extract` folder, by the app's Export and
by `mmre graph export`."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from mmre_demo import graph as kg
from mmre_demo.cli import main
from mmre_demo.data.schema import Entity
from mmre_demo.extract.exports import GRAPH_TTL, TRIPLES_CSV, write_exports
from mmre_demo.graph.neo4j_csv import LOAD_CYPHER, NODES_CSV, RELATIONSHIPS_CSV, neo4j_export, relationship_type
from mmre_demo.graph.rdf import rdf_export
from mmre_demo.graph.synthetic import synthetic_extract
from mmre_demo.graph_formats import NEO4J_FOLDER
from mmre_demo.prediction import PairPrediction, Prediction

# Neo4j operations manual, "Import header format" (neo4j-admin database import): the property types, each
# also as an array with "[]"; the fields without a name part; `name:ID` names the node id property
DOCUMENTED_TYPES = {"int", "long", "float", "double", "boolean", "byte", "short", "char", "string", "point", "date",
                    "localtime", "time", "localdatetime", "datetime", "duration", "vector"}
NODE_SPECIAL, RELATIONSHIP_SPECIAL = {"ID", "LABEL"}, {"START_ID", "END_ID", "TYPE"}
CYPHER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a label / relationship type usable without backticks
VOCAB = "https://mmre-demo.invalid/vocab#"
SPARQL_PREFIXES = f"PREFIX mmre: <{VOCAB}>\nPREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"


def _post(g, post_id, caption, ents, rels, image_id=None):
    es = [Entity(name, caption.index(name), caption.index(name) + len(name), etype) for name, etype in ents]
    pairs = [PairPrediction(es[h], es[t], label, p, [(label, p)]) for (h, t), (label, p) in rels.items()]
    pred = Prediction(caption=caption, entities=es, pairs=pairs, concepts=[], has_image=image_id is not None,
                      image_size=(10, 10) if image_id else None, device="cpu")
    kg.add_prediction(g, pred, image_id=image_id, min_score=0.0, post_id=post_id)


def example_graph(suggestion: bool = False):
    """Three posts (one with an image), names with a comma, a quote and a `;`, a relation seen twice, one
    below 0.5, an annotated one; with `suggestion`, a suggested edge too."""
    g = kg.new_graph()
    _post(g, "p1", "Eileen Collins of NASA in Houston",
          [("Eileen Collins", "PER"), ("NASA", "ORG"), ("Houston", "LOC")],
          {(0, 1): ("/per/org/member_of", 0.8), (1, 2): ("/org/loc/locate_at", 0.3)}, image_id="astronaut.jpg")
    _post(g, "p2", "NASA hired Eileen Collins",
          [("NASA", "ORG"), ("Eileen Collins", "PER")], {(1, 0): ("/per/org/member_of", 0.95)})
    _post(g, "post; 3", 'Acme, "the best"; Inc opens in Houston near Ann',
          [('Acme, "the best"; Inc', "ORG"), ("Houston", "LOC"), ("Ann", "PER")],
          {(0, 1): ("/org/loc/locate_at", 0.7), (2, 1): ("/per/loc/place_of_residence", 0.6)})
    kg.add_relation(g, "PER:Ann", "/per/org/member_of", 'ORG:Acme, "the best"; Inc', 0.2, kg.ANNOTATED)
    if suggestion:
        kg.add_relation(g, "PER:Eileen Collins", "/per/loc/place_of_residence", "LOC:Houston", 0.66, kg.SUGGESTED)
    return g


def read_csv(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def neo4j_header_problems(nodes_text: str, relationships_text: str) -> list[str]:
    """What breaks the documented header format, or the links between the two files."""
    problems = []
    for name, text, special, required in (
            (NODES_CSV, nodes_text, NODE_SPECIAL, {"ID"}),
            (RELATIONSHIPS_CSV, relationships_text, RELATIONSHIP_SPECIAL, RELATIONSHIP_SPECIAL)):
        header, rows = read_csv(text)
        kinds = []
        for field in header:
            prop, sep, ftype = field.partition(":")
            if not sep:
                kinds.append("string")  # no type: string
            elif ftype in special:
                kinds.append(ftype)
                if ftype != "ID" and prop:
                    problems.append(f"{name}: {field!r}: only :ID takes a name")
            elif ftype.removesuffix("[]") in DOCUMENTED_TYPES and prop:
                kinds.append(ftype)
            else:
                problems.append(f"{name}: {field!r} is not name:type with a documented type or a special field")
        if missing := required - set(kinds):
            problems.append(f"{name}: no {sorted(missing)} field")
        problems += [f"{name}: row {i} has {len(r)} fields, the header {len(header)}"
                     for i, r in enumerate(rows) if len(r) != len(header)]
    n_header, nodes = read_csv(nodes_text)
    ids = [r[n_header.index("id:ID")] for r in nodes]
    if len(set(ids)) != len(ids):
        problems.append("node ids are not unique")
    labels = [lab for r in nodes for lab in r[n_header.index(":LABEL")].split(";")]
    problems += [f"label {lab!r}" for lab in labels if not CYPHER_NAME.match(lab)]
    r_header, rels = read_csv(relationships_text)
    for r in rels:
        for end in (":START_ID", ":END_ID"):
            if r[r_header.index(end)] not in ids:
                problems.append(f"{end} {r[r_header.index(end)]!r} is no node of {NODES_CSV}")
        if not CYPHER_NAME.match(r[r_header.index(":TYPE")]):
            problems.append(f":TYPE {r[r_header.index(':TYPE')]!r}")
    return problems


def sparql_counts_per_relation(turtle: str) -> Counter:
    import rdflib

    rg = rdflib.Graph().parse(data=turtle, format="turtle")
    q = SPARQL_PREFIXES + ("SELECT ?label (COUNT(*) AS ?n) WHERE { ?s ?p ?o . ?p a mmre:Relation ; rdfs:label ?label } "
                           "GROUP BY ?label")
    return Counter({str(label): int(n) for label, n in rg.query(q)})


def csv_counts_per_relation(triples_csv: str) -> Counter:
    return Counter(r["relation"] for r in csv.DictReader(io.StringIO(triples_csv)))


# ---------------------------------------------------------------------------------------------- Neo4j
def test_neo4j_files_follow_the_documented_import_header_format():
    g = example_graph(suggestion=True)
    files = neo4j_export(g, 0.5).files
    assert neo4j_header_problems(files[NODES_CSV], files[RELATIONSHIPS_CSV]) == []
    header, _ = read_csv(files[RELATIONSHIPS_CSV])
    assert header[:3] == [":START_ID", ":END_ID", ":TYPE"] and "probability:float" in header
    assert "post_ids:string[]" in header
    nodes_header, nodes = read_csv(files[NODES_CSV])
    assert nodes_header[0] == "id:ID" and len(nodes) == len(kg.entity_nodes(g))  # no image nodes


def test_neo4j_relationships_are_the_triples_at_the_threshold_with_suggestions_marked():
    g = example_graph(suggestion=True)
    header, rels = read_csv(neo4j_export(g, 0.5).files[RELATIONSHIPS_CSV])
    rows = [dict(zip(header, r)) for r in rels]
    assert len(rows) == len(kg.triples(g, 0.5, include_suggested=True)) == 5
    assert Counter(r["source"] for r in rows) == {"predicted": 3, "annotated": 1, "suggested": 1}
    assert not any(r["relation"] == "depicts" for r in rows)
    without = neo4j_export(example_graph(), 0.5)
    assert without.relationships == len(kg.triples(example_graph(), 0.5)) == 4


def test_neo4j_values_keep_commas_quotes_post_ids_and_probabilities():
    g = example_graph()
    files = neo4j_export(g, 0.0).files
    header, rels = read_csv(files[RELATIONSHIPS_CSV])
    rows = {(r[0], r[3], r[1]): dict(zip(header, r)) for r in rels}
    twice = rows[("PER:Eileen Collins", "/per/org/member_of", "ORG:NASA")]
    assert twice[":TYPE"] == "MEMBER_OF" and twice["count:int"] == "2"
    assert twice["post_ids:string[]"].split(";") == ["p1", "p2"]
    assert [float(x) for x in twice["post_scores:float[]"].split(";")] == [0.8, 0.95]
    assert float(twice["probability:float"]) == 0.95
    acme = rows[('ORG:Acme, "the best"; Inc', "/org/loc/locate_at", "LOC:Houston")]
    assert acme["post_ids:string[]"] == "post, 3"  # a ";" inside a value would split the array
    _, nodes = read_csv(files[NODES_CSV])
    assert ['ORG:Acme, "the best"; Inc', 'Acme, "the best"; Inc', "ORG", "Entity;ORG"] in nodes


def test_relationship_types_are_upper_snake_and_keep_the_label_apart():
    assert relationship_type("/per/org/member_of") == "MEMBER_OF"
    assert relationship_type("/per/per/alternate_names") == relationship_type("/org/org/alternate_names")
    assert relationship_type("shows text of") == "SHOWS_TEXT_OF" and relationship_type("3d") == "_3D"


def _statements(cypher: str) -> list[str]:
    body = "\n".join(ln for ln in cypher.splitlines() if not ln.startswith("//"))
    return [s.strip() for s in body.split(";\n") if s.strip()]


def test_load_cypher_reads_the_csv_columns_by_their_header_names_and_only_merges():
    g = example_graph(suggestion=True)
    export = neo4j_export(g, 0.5)
    headers = {name: read_csv(export.files[name])[0] for name in (NODES_CSV, RELATIONSHIPS_CSV)}
    statements = _statements(export.files[LOAD_CYPHER])
    assert re.fullmatch(r"CREATE CONSTRAINT \w+ IF NOT EXISTS FOR \(n:Entity\) REQUIRE n\.id IS UNIQUE;?",
                        statements[0])
    for st in statements[1:]:
        source = re.search(r"LOAD CSV WITH HEADERS FROM 'file:///([^']+)' AS row", st).group(1)
        used = re.findall(r"row\.`([^`]+)`", st) + re.findall(r"row\.(\w+)", st)
        assert used and set(used) <= set(headers[source]), (source, used)
        assert "CREATE" not in st  # MERGE / MATCH only: a second run adds nothing
    rel_statements = [s for s in statements if RELATIONSHIPS_CSV in s]
    assert sorted(re.search(r"`:TYPE` = '(\w+)'", s).group(1) for s in rel_statements) == \
        sorted(set(export.relationship_types)) == ["LOCATE_AT", "MEMBER_OF", "PLACE_OF_RESIDENCE"]
    # both loaders make the same properties: the header's names without their types
    set_props = {p for s in rel_statements for p in re.findall(r"\br\.(\w+) =", s)}
    set_props |= {p for s in rel_statements for p in re.findall(r"\[r:\w+ \{(\w+):", s)}
    header_props = {f.split(":")[0] for f in headers[RELATIONSHIPS_CSV] if not f.startswith(":")}
    assert set_props == header_props
    node_props = {p for s in statements if NODES_CSV in s for p in re.findall(r"\bn\.(\w+) =", s)} | {"id"}
    assert node_props == {f.split(":")[0] for f in headers[NODES_CSV] if not f.startswith(":")}
    labels = {m for s in statements for m in re.findall(r"SET n:(\w+)", s)}
    assert labels == {"PER", "ORG", "LOC"}


# ------------------------------------------------------------------------------------------------ RDF
def test_turtle_parses_and_sparql_counts_per_relation_equal_the_triples_csv():
    g = example_graph()
    export = rdf_export(g, 0.5)
    assert sparql_counts_per_relation(export.turtle) == csv_counts_per_relation(kg.to_csv(g, 0.5))
    assert export.relations == 4


def test_sparql_finds_the_relations_of_one_entity_as_the_triples_csv_lists_them():
    import rdflib

    g = example_graph()
    rg = rdflib.Graph().parse(data=rdf_export(g, 0.0).turtle, format="turtle")
    q = SPARQL_PREFIXES + """SELECT ?head ?relation ?tail WHERE {
        ?e a mmre:Entity ; rdfs:label "Houston" .
        { ?s ?p ?e } UNION { ?e ?p ?o }
        ?p a mmre:Relation ; rdfs:label ?relation .
        BIND(COALESCE(?s, ?e) AS ?h) BIND(COALESCE(?o, ?e) AS ?t)
        ?h rdfs:label ?head . ?t rdfs:label ?tail }"""
    got = sorted((str(h), str(r), str(t)) for h, r, t in rg.query(q))
    rows = csv.DictReader(io.StringIO(kg.to_csv(g, 0.0)))
    want = sorted((r["head"], r["relation"], r["tail"]) for r in rows if "Houston" in (r["head"], r["tail"]))
    assert got == want and len(got) == 3


def test_reified_statements_carry_probability_source_count_and_posts():
    import rdflib

    g = example_graph(suggestion=True)
    rg = rdflib.Graph().parse(data=rdf_export(g, 0.5).turtle, format="turtle")
    q = SPARQL_PREFIXES + """PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
    SELECT ?head ?relation ?tail ?prob ?source ?count (GROUP_CONCAT(?caption; separator="|") AS ?captions) WHERE {
        ?st a rdf:Statement ; rdf:subject ?s ; rdf:predicate ?p ; rdf:object ?o ;
            mmre:probability ?prob ; mmre:source ?source ; mmre:count ?count .
        ?s ?p ?o .
        ?s rdfs:label ?head . ?p rdfs:label ?relation . ?o rdfs:label ?tail .
        OPTIONAL { ?st mmre:post ?post . ?post mmre:caption ?caption } }
    GROUP BY ?head ?relation ?tail ?prob ?source ?count"""
    got = {(str(h), str(r), str(t)): (float(p), str(s), int(c), sorted(str(x).split("|")) if str(x) else [])
           for h, r, t, p, s, c, x in rg.query(q)}
    assert got[("Eileen Collins", "/per/org/member_of", "NASA")] == (
        0.95, "predicted", 2, ["Eileen Collins of NASA in Houston", "NASA hired Eileen Collins"])
    assert got[("Eileen Collins", "/per/loc/place_of_residence", "Houston")][:2] == (0.66, "suggested")
    assert got[("Ann", "/per/org/member_of", 'Acme, "the best"; Inc')][1] == "annotated"  # at 0.2: always kept
    assert len(got) == 5


def test_rdflib_refuses_rdf_star_turtle_which_is_why_provenance_is_reified():
    """docs/graph.md says so; if rdflib learns RDF-star, this fails and the choice can be revisited."""
    import rdflib

    star = "@prefix : <http://example.org/> .\n<< :a :b :c >> :probability 0.9 .\n"
    with pytest.raises(Exception, match="(?i)bad syntax"):
        rdflib.Graph().parse(data=star, format="turtle")


# ------------------------------------------------------------------------- where the exports are written
def test_every_extract_folder_gets_neo4j_files_and_turtle_matching_its_triples_csv(tmp_path):
    folder = synthetic_extract(tmp_path / "corpus", 80, seed=3)
    summary = write_exports(folder, threshold=0.5)
    neo = folder / NEO4J_FOLDER
    assert sorted(p.name for p in neo.iterdir()) == sorted([LOAD_CYPHER, NODES_CSV, RELATIONSHIPS_CSV])
    nodes_text, rels_text = ((neo / n).read_text(encoding="utf-8") for n in (NODES_CSV, RELATIONSHIPS_CSV))
    assert neo4j_header_problems(nodes_text, rels_text) == []
    triples_csv = (folder / TRIPLES_CSV).read_text(encoding="utf-8")
    n_triples = sum(csv_counts_per_relation(triples_csv).values())
    assert len(read_csv(rels_text)[1]) == n_triples == summary["neo4j"]["relationships"] > 10
    assert sparql_counts_per_relation((folder / GRAPH_TTL).read_text(encoding="utf-8")) == \
        csv_counts_per_relation(triples_csv)
    assert summary["rdf"]["relations"] == n_triples and summary["rdf"]["file"] == GRAPH_TTL


def test_the_apps_export_adds_turtle_and_a_zip_of_the_neo4j_files(tmp_path):
    g = example_graph()
    paths = kg.write_all(g, tmp_path, 0.5)
    assert [Path(p).name for p in paths] == ["mmre_graph.json", "mmre_graph.csv", "mmre_graph.graphml",
                                             "mmre_graph.ttl", "mmre_graph_neo4j.zip"]
    with zipfile.ZipFile(paths[-1]) as zf:  # files at the top: unzip into Neo4j's import folder
        assert sorted(zf.namelist()) == sorted([LOAD_CYPHER, NODES_CSV, RELATIONSHIPS_CSV])
        assert neo4j_header_problems(zf.read(NODES_CSV).decode(), zf.read(RELATIONSHIPS_CSV).decode()) == []
    assert sparql_counts_per_relation(Path(paths[3]).read_text(encoding="utf-8")) == \
        csv_counts_per_relation(Path(paths[1]).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------- mmre graph export
@pytest.fixture
def graph_files(tmp_path):
    kg.write_all(example_graph(), tmp_path / "g", 0.0, stem="graph")
    return tmp_path / "g" / "graph.json", tmp_path / "g" / "graph.graphml"


@pytest.mark.parametrize("source", [0, 1], ids=["json", "graphml"])
def test_graph_export_writes_neo4j_and_rdf_from_a_written_graph_file(graph_files, tmp_path, capsys, source):
    src = graph_files[source]
    assert main(["graph", "export", str(src), "--format", "neo4j", "--out", str(tmp_path / "n")]) == 0
    assert "5 relations" in capsys.readouterr().out
    nodes, rels = ((tmp_path / "n" / n).read_text(encoding="utf-8") for n in (NODES_CSV, RELATIONSHIPS_CSV))
    assert neo4j_header_problems(nodes, rels) == [] and len(read_csv(rels)[1]) == 5
    assert main(["graph", "export", str(src), "--format", "rdf", "--threshold", "0.5"]) == 0  # default: beside it
    ttl = src.with_suffix(".ttl").read_text(encoding="utf-8")
    assert sparql_counts_per_relation(ttl) == csv_counts_per_relation(kg.to_csv(example_graph(), 0.5))


def test_graph_export_defaults_and_the_other_formats(graph_files, tmp_path):
    src = graph_files[0]
    assert main(["graph", "export", str(src), "--format", "neo4j"]) == 0
    assert (src.parent / NEO4J_FOLDER / LOAD_CYPHER).is_file()
    for fmt, name in (("graphml", "x.graphml"), ("csv", "x.csv"), ("json", "x.json")):
        out = tmp_path / "out" / name
        assert main(["graph", "export", str(src), "--format", fmt, "--out", str(out), "--threshold", "0.9"]) == 0
        assert out.stat().st_size > 0
    assert len(list(csv.DictReader((tmp_path / "out" / "x.csv").open(encoding="utf-8")))) == 2  # 0.95 + annotated
    assert json.loads((tmp_path / "out" / "x.json").read_text())["format"] == "mmre_demo.graph/1"


@pytest.mark.parametrize("make, args, message", [
    (lambda p: p / "missing.json", [], "no such graph file"),
    (lambda p: (p / "notes.txt").write_text("hello") and p / "notes.txt", [], "unknown graph file type"),
    (lambda p: (p / "g.json").write_text('{"a": 1}') and p / "g.json", [], "not an mmre_demo graph export"),
    (lambda p: (p / "g.json").write_text("{oops") and p / "g.json", [], "not valid JSON"),
    (lambda p: p / "g" / "graph.json", ["--format", "json"], "is the input graph file"),
    (lambda p: p / "g" / "graph.json", ["--threshold", "2"], "--threshold must be in [0, 1]"),
], ids=["missing", "text", "other-json", "broken-json", "overwrite-input", "threshold"])
def test_graph_export_refuses_bad_input_with_one_line(graph_files, tmp_path, capsys, make, args, message):
    src = make(tmp_path)
    argv = ["graph", "export", str(src), "--format", "rdf", *args]
    if "--format" in args:
        argv = ["graph", "export", str(src), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("mmre graph: error:") and "\n" not in err
