"""The Gradio app: `build()` returns the Blocks; callbacks are plain functions in `callbacks`."""

from mmre_demo.ui.callbacks import Controller, Session
from mmre_demo.ui.layout import API_NAMES, build, launch_kwargs

__all__ = ["API_NAMES", "Controller", "Session", "build", "launch_kwargs"]
