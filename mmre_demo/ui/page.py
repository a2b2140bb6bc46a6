"""The page as the tabs' builders see it: the shared resources, the components each `Output` is shown
in, the inputs every tab reads (the threshold, the tab's state), and `bind`, which turns a callback's
`Update` into the values of the components it declares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from mmre_demo.ui.controller import Controller
from mmre_demo.ui.outputs import Choices, Output, Status, Update

# callbacks that run the model at the same time, all model events together: requests running together
# share the models' batches (`microbatch`); the rest of a callback (drawing) runs beside them
MODEL_CONCURRENCY = 8
MODEL_EVENTS = dict(concurrency_limit=MODEL_CONCURRENCY, concurrency_id="model")
# the images the app shows are sent as JPEG: Gradio's default WebP took 30 ms of CPU per click for the
# two result images, JPEG 1.4 ms (PNG 100 ms); they are pictures and heatmaps, not line art
IMAGE_FORMAT = "jpeg"


@dataclass
class Page:
    """What the tab builders share: `ctl`, `tab` (the gr.State of the `TabState`), `threshold` (the page's
    one slider) and `components` (one per `Output`, filled in as the tabs are built)."""

    ctl: Controller
    tab: Any
    threshold: Any
    components: dict[Output, Any] = field(default_factory=dict)

    def out(self, name: Output, component: Any) -> Any:
        """Register `component` as the one that shows `name`; returns it."""
        self.components[name] = component
        return component

    def check(self) -> None:
        missing = set(Output) - set(self.components)
        assert not missing, f"outputs without a component: {missing}"

    def bind(self, fn: Callable[..., Update]) -> tuple[list[Any], Callable[[Update], tuple]]:
        """The components of the outputs `fn` declares, and the converter of its `Update` onto them
        (`Status` -> the status line and a toast, `Choices` -> dropdown options, POLL -> the timer)."""
        names: tuple[Output, ...] = fn.outputs  # type: ignore[attr-defined]

        def convert(result: Update) -> tuple:
            values = []
            for name in names:
                value = result.get(name, gr.skip())
                if isinstance(value, Status):
                    if value.is_problem:
                        gr.Warning(value.message)  # a toast as well as the status line
                    value = value.markdown()
                elif isinstance(value, Choices):
                    value = gr.update(choices=value.choices, value=value.value)
                elif name is Output.POLL and isinstance(value, bool):
                    value = gr.Timer(active=value)
                values.append(value)
            return tuple(values)

        return [self.components[n] for n in names], convert


def oauth_name(profile: gr.OAuthProfile | None) -> str | None:
    """The Hugging Face user signed in (LoginMode.HUGGINGFACE), or None."""
    return getattr(profile, "username", None) if profile is not None else None
