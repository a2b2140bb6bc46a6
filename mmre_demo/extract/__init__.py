"""`mmre extract`: a corpus (JSON Lines, CSV, MNRE) -> triples, posts, errors and the corpus graph.

Modules, one concern each: `posts` (the record types), `readers` (streaming input), `images`
(read + decode in a thread pool), `predictor` (the `BatchPredictor` protocol and the `Pipeline`
adapter), `records` (output records from `Prediction.to_dict()`), `store` (append, fsync, resume),
`exports` (graph.json / graph.graphml / triples.csv), `engine` (the local engine), `ray_engine`
(the same job on Ray Data; needs the `distributed` extra). No gradio here; torch only via the model.
"""

from mmre_demo.extract.engine import ExtractJob, run_local
from mmre_demo.extract.exports import build_graph, write_exports
from mmre_demo.extract.posts import InputProblem, Post, PostInput, PostResult
from mmre_demo.extract.predictor import BatchPredictor, ModelInfo, PipelinePredictor, PredictorSpec, model_info
from mmre_demo.extract.readers import count_items, read_items, sniff_format
from mmre_demo.extract.store import OutputStore

__all__ = ["BatchPredictor", "ExtractJob", "InputProblem", "ModelInfo", "OutputStore", "PipelinePredictor", "Post",
           "PostInput", "PostResult", "PredictorSpec", "build_graph", "count_items", "model_info", "read_items",
           "run_local", "sniff_format", "write_exports"]
