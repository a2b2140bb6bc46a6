#!/bin/sh
# The image's entry point. No command, or "serve": the web app (docker/serve.py checks the data volume
# and the port first). "mmre ARGS", or ARGS alone (e.g. "predict --caption ... --json"): the command line.
# python/sh/bash run as given (for a look inside).
set -eu
if [ "$#" -eq 0 ]; then
  set -- serve
fi
case "$1" in
  serve) shift; exec python /app/docker/serve.py "$@" ;;
  mmre) shift; exec mmre "$@" ;;
  python | python3 | sh | bash) exec "$@" ;;
  *) exec mmre "$@" ;;
esac
