"""mmre_demo web app: `python app.py` serves on 127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT
override it, as on Hugging Face Spaces). MMRE_DEVICE=cpu|cuda|mps overrides the automatic device."""

from __future__ import annotations

import os

# offline: no analytics, no hub calls (Spaces and air-gapped machines)
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from mmre_demo.logs import setup_logging  # noqa: E402
from mmre_demo.ui import build, launch_kwargs  # noqa: E402

setup_logging()
demo = build()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=2, max_size=64).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **launch_kwargs(),
    )
