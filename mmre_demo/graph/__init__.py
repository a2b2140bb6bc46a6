"""Session knowledge graph (networkx), its plotly view and exports. Imports neither torch nor the model."""

from mmre_demo.graph.export import to_csv, to_graphml, to_json, to_json_dict, write_all
from mmre_demo.graph.figure import figure, layout
from mmre_demo.graph.store import (
                                   ANNOTATED,
                                   PREDICTED,
                                   SUGGESTED,
                                   add_entity,
                                   add_image,
                                   add_prediction,
                                   add_relation,
                                   entity_nodes,
                                   image_node_id,
                                   new_graph,
                                   node_id,
                                   relation_edges,
                                   remove_relation,
                                   triples,
                                   view,
)

__all__ = ["ANNOTATED", "PREDICTED", "SUGGESTED", "add_entity", "add_image", "add_prediction", "add_relation",
           "entity_nodes", "figure", "image_node_id", "layout", "new_graph", "node_id", "relation_edges",
           "remove_relation", "to_csv", "to_graphml", "to_json", "to_json_dict", "triples", "view", "write_all"]
