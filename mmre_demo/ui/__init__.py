"""The Gradio app: `build()` returns the Blocks page.

Rooms: `outputs` (the typed contract: `Output`, `Status`, `Choices`), `callbacks` (plain functions),
`render` (pure formatting), `controller` (shared resources and each tab's `TabState`), `layout` (the
page: one component per `Output`). Nothing outside `ui/` imports gradio.
"""

from mmre_demo.ui.controller import Controller, TabState, examples
from mmre_demo.ui.layout import API_NAMES, build, launch_kwargs
from mmre_demo.ui.outputs import Output, Status

__all__ = ["API_NAMES", "Controller", "Output", "TabState", "Status", "build", "examples", "launch_kwargs"]
