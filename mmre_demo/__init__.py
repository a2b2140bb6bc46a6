"""mmre_demo: multimodal relation extraction from an image and its caption.

The public entry point is :class:`mmre_demo.pipeline.Pipeline`; it is imported lazily so that
`import mmre_demo` stays cheap (no torch import) for the graph and data helpers.
"""

from __future__ import annotations

from mmre_demo.lazy import lazy_exports

__version__ = "0.1.0"
_HOME = {"Pipeline": "pipeline", "Prediction": "pipeline", "PairPrediction": "pipeline", "Entity": "pipeline"}
__getattr__, __dir__ = lazy_exports(__name__, _HOME)
