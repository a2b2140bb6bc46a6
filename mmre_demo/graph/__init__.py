"""Session knowledge graph (networkx), its plotly view and exports. Imports neither torch nor the model."""

from mmre_demo.graph.export import to_csv, to_graphml, to_json, to_json_dict, write_all
from mmre_demo.graph.figure import drawn_counts, figure
from mmre_demo.graph.importer import graph_from_graphml, graph_from_json_dict, read_graph
from mmre_demo.graph.overview import top_degree_view
from mmre_demo.graph.placement import layout
from mmre_demo.graph.store import (
    ANNOTATED,
    ENTITY_KIND,
    PREDICTED,
    SUGGESTED,
    add_entity,
    add_image,
    add_post,
    add_prediction,
    add_relation,
    add_suggested_link,
    apply_decision,
    entity_nodes,
    image_node_id,
    new_graph,
    node_id,
    node_type,
    posts_table,
    relation_edges,
    remove_relation,
    take_back_decision,
    triples,
    view,
)

__all__ = ["ANNOTATED", "ENTITY_KIND", "PREDICTED", "SUGGESTED", "add_entity", "add_image", "add_post",
           "add_prediction", "add_relation", "add_suggested_link", "apply_decision", "drawn_counts", "entity_nodes",
           "figure", "graph_from_graphml", "graph_from_json_dict", "image_node_id", "layout", "new_graph", "node_id",
           "node_type", "posts_table", "read_graph", "relation_edges", "remove_relation", "take_back_decision",
           "to_csv", "to_graphml", "to_json", "to_json_dict", "top_degree_view", "triples", "view", "write_all"]
