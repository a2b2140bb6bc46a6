"""Docker HEALTHCHECK: healthy (exit 0) once the app serves its page on 127.0.0.1:$GRADIO_SERVER_PORT."""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('GRADIO_SERVER_PORT', '7860')}/"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:  # refused while starting, or a timeout
        print(f"unhealthy: {url}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
