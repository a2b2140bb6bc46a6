"""What one browser tab (or one gradio_client) holds between callbacks: each app tab's own state.

`ExtractState` is the Extract tab's, `GraphState` the Graph tab's, `ReviewState` the Review tab's. The
page keeps them in one `gr.State` (`TabState`, all three) because the tabs hand each other their
results: the Extract tab's prediction is what its annotator panel judges, its triples grow the Graph
tab's graph, and its posts are a review queue's source. A callback reads and writes its own tab's
fields, and another tab's only where the hand-over above says so.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx
from PIL import Image

from mmre_demo import graph as kg
from mmre_demo.annotations.review import ReviewPost
from mmre_demo.graph.explore import ViewFilter
from mmre_demo.prediction import Prediction

if TYPE_CHECKING:  # the app runs without mmre_demo.kge (no link suggestions then)
    from mmre_demo.kge.predict import Suggestion


@dataclass
class ExtractState:
    """The Extract tab: the last prediction and the image it was made on."""

    prediction: Prediction | None = None
    image: Image.Image | None = None  # small RGB copy for the overlays
    image_path: str | None = None
    image_id: str | None = None
    pair_index: int | None = None
    requests: int = 0
    posts: list[ReviewPost] = field(default_factory=list)  # what this tab classified (a review queue's source)


@dataclass
class GraphState:
    """The Graph tab: the tab's knowledge graph and how it is drawn (focus, filters, suggestions)."""

    graph: nx.MultiDiGraph = field(default_factory=kg.new_graph)
    positions: dict = field(default_factory=dict)
    selected_node: str | None = None
    suggestions: list[Suggestion] = field(default_factory=list)
    view: ViewFilter = field(default_factory=ViewFilter)  # the graph tab's focus and filters
    suggest_k: int = 5
    threshold: float | None = None  # the page's threshold as the graph callbacks last saw it
    thumbnails: dict[str, str] = field(default_factory=dict)  # post id -> small JPEG (data URI) for provenance
    # whether the Graph tab is the one open: the callbacks of the other tabs then leave the drawing alone
    # (laying out and drawing the graph was a third of a click's CPU) and opening the tab draws it
    graph_open: bool = False


@dataclass
class ReviewState:
    """The Review tab: who signed in, the queue open and the item it shows."""

    signed_in: str | None = None  # the annotator signed in with a password (login mode)
    review_queue: str | None = None
    review_position: int | None = None


@dataclass
class TabState(ExtractState, GraphState, ReviewState):
    """Everything one browser tab accumulates: each app tab's state, and the id its link suggester and
    exports are kept under."""

    sid: str = field(default_factory=lambda: uuid.uuid4().hex)
