"""`mmre label-studio-backend`: the model served as a Label Studio ML backend (pre-annotations: entities
and relations; the protocol in `mmre_demo/annotations/ls_backend.py`)."""

from __future__ import annotations

import argparse
import logging
import os

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    from mmre_demo.annotations.ls_backend import DEFAULT_HOST, DEFAULT_PORT, ENV_API_KEY, ENV_URL

    b = sub.add_parser("label-studio-backend",
                       help="serve the model as a Label Studio ML backend (entities and relations as pre-annotations)")
    b.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)")
    b.add_argument("--port", type=int, default=DEFAULT_PORT, help="default: %(default)s")
    b.add_argument("--label-studio-url",
                   help=f"Label Studio's URL, to fetch the tasks' /data/upload/... images (default: ${ENV_URL}, "
                        "else the hostname Label Studio sends when it connects)")
    b.add_argument("--api-key",
                   help=f"Label Studio API key (legacy token or personal access token) for those images (default: "
                        f"${ENV_API_KEY}, else the token Label Studio sends when it connects)")
    b.add_argument("--weights", help="weights folder (default: $MMRE_WEIGHTS, else the shipped weights/)")
    b.add_argument("--device", default="auto")
    b.add_argument("--no-read-text", action="store_true", help="do not read the text in the tasks' images (OCR)")
    b.set_defaults(handler=cmd_backend)


def cmd_backend(args: argparse.Namespace) -> int:
    import uvicorn

    from mmre_demo.annotations.formats import LS_MODEL_VERSION
    from mmre_demo.annotations.ls_backend import ENV_API_KEY, ENV_URL, ImageSource, create_app
    from mmre_demo.data.paths import WeightsLayout
    from mmre_demo.pipeline import Pipeline

    pipe = Pipeline.load(args.weights, device=args.device, read_text=not args.no_read_text)
    version = f"{LS_MODEL_VERSION}-{WeightsLayout.find(args.weights).version()}"
    images = ImageSource(args.label_studio_url or os.environ.get(ENV_URL) or None,
                         args.api_key or os.environ.get(ENV_API_KEY) or None)
    app = create_app(pipe, version, images, read_text=not args.no_read_text)
    logger.info("Label Studio ML backend %s on http://%s:%d (Label Studio: Settings -> Model -> Connect Model)",
                version, args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
