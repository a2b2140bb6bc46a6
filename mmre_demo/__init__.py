"""mmre_demo: multimodal relation extraction from an image and its caption.

The public entry point is :class:`mmre_demo.pipeline.Pipeline`; it is imported lazily so that
`import mmre_demo` stays cheap (no torch import) for the graph and data helpers.
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    if name in {"Pipeline", "Prediction", "PairPrediction", "Entity"}:
        from mmre_demo import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
