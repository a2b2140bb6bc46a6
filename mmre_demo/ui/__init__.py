"""The Gradio app: `build()` returns the Blocks page.

Rooms: `outputs` (the contract: `Output`, `Status`, `Choices`, `callback`), one module per tab, each
with its builder and callbacks (`extract`, `graph`, `review`), `state` (each tab's state, and the
`TabState` one browser tab holds), `controller` (the shared resources), `render` (pure formatting),
`page` and `layout` (the page the tabs are built into). Nothing outside `ui/` imports gradio.
"""

from mmre_demo.ui.controller import Controller, examples
from mmre_demo.ui.layout import API_NAMES, build, launch_kwargs
from mmre_demo.ui.outputs import Output, Status
from mmre_demo.ui.state import TabState

__all__ = ["API_NAMES", "Controller", "Output", "TabState", "Status", "build", "examples", "launch_kwargs"]
