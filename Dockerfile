# mmre_demo on CPU: the web app by default, `mmre …` when given a command (README "Run with Docker").
#   docker build -t mmre_demo .
#   docker run --rm -p 7860:7860 -v mmre-data:/data mmre_demo
#   docker run --rm mmre_demo predict --caption "Eileen Collins of NASA in Houston" --json
# No "# syntax=" line on purpose: the builder's own Dockerfile frontend is used (CI cannot pull one).
#
# BASE_IMAGE: an official Python 3.11 image, or a bare Debian without python (CI: a debootstrap'd
# bookworm, whose python3 is 3.11), which gets python3 from apt below. The pinned torch wheel is cp311.
ARG BASE_IMAGE=python:3.11-slim

# --- the app's files, world-readable (a checkout may hold some as 0600); copied into the image below --
FROM ${BASE_IMAGE} AS src
COPY app.py pyproject.toml README.md /app/
COPY mmre_demo /app/mmre_demo
COPY weights /app/weights
COPY assets /app/assets
COPY docker/entrypoint.sh docker/serve.py docker/healthcheck.py /app/docker/
RUN chmod -R u=rwX,go=rX /app && chmod 755 /app/docker/entrypoint.sh

# --- the image ---------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
# Where the CPU build of torch comes from (PyPI's Linux wheel pulls GBs of CUDA). CI sets it empty and
# puts the CPU wheel in docker/wheels/ instead (that host cannot be reached there).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV LANG=C.UTF-8 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=120

# python3 + venv for a bare Debian base (the official Python images already have them); a non-root user
RUN if ! command -v python3 >/dev/null 2>&1; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
           python3 python3-venv ca-certificates passwd \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi \
 && useradd --uid 1000 --create-home mmre \
 && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Every pip step may use the optional build secret `pip_cert` (a CA bundle; CI: --secret id=pip_cert,src=$PIP_CERT)
# torch first and pinned, the CPU build (as the README installs it); the build stops if a CUDA build came in
RUN --mount=type=secret,id=pip_cert --mount=type=bind,source=docker/wheels,target=/wheels \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && if [ -n "$TORCH_INDEX_URL" ]; then set -- --extra-index-url "$TORCH_INDEX_URL"; fi \
 && pip install --find-links /wheels "$@" torch==2.13.0 \
 && python -c "import sys, torch; sys.exit(f'torch {torch.__version__} is a CUDA build' if torch.version.cuda else 0)"

# the OCR package as the README installs it: --no-deps, since it asks for the GUI OpenCV (libGL);
# its real dependencies, with the headless OpenCV, come from pyproject.toml below
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && pip install --no-deps rapidocr-onnxruntime==1.4.4

# The project's dependencies, read from pyproject.toml before its code is copied (a code change reuses this
# layer). seqeval is only an sdist whose setup.py fetches setuptools_scm without that package's own
# dependencies (it fails in an isolated build), so sdists build here against a complete setuptools_scm,
# removed afterwards (a build-only tool).
RUN --mount=type=secret,id=pip_cert --mount=type=bind,source=pyproject.toml,target=/tmp/pyproject.toml \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && python -c 'import tomllib; print(*tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' \
      > /tmp/requirements.txt \
 && pip install setuptools_scm \
 && pip install --no-build-isolation -r /tmp/requirements.txt \
 && pip uninstall -y setuptools_scm vcs-versioning \
 && rm /tmp/requirements.txt

# The project, editable: the code finds weights/ (unless $MMRE_WEIGHTS names another folder) and assets/ beside
# its package (mmre_demo/data/paths.py, WeightsLayout), so it stays in /app with them. Then: still no CUDA wheel, and the data folder for the volume.
COPY --from=src /app /app
WORKDIR /app
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && pip install --no-deps -e . \
 && python -m compileall -q mmre_demo app.py docker \
 && python -c "import sys, torch; sys.exit(f'torch {torch.__version__} is a CUDA build' if torch.version.cuda else 0)" \
 && if pip list 2>/dev/null | grep -i '^nvidia-'; then echo 'CUDA wheels installed' >&2; exit 1; fi \
 && mkdir -p /data/annotations /data/exports && chown -R mmre:mmre /data

# What must survive a restart: the annotation store (SQLite + the annotated images beside it) and the
# app's exports (graph, annotations; $MMRE_EXPORT_DIR).
VOLUME /data
ENV PYTHONUNBUFFERED=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    TRANSFORMERS_OFFLINE=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    MMRE_ANNOTATIONS_DB=/data/annotations/annotations.sqlite3 \
    MMRE_EXPORT_DIR=/data/exports
USER mmre
EXPOSE 7860
# healthy once the page is served (the model loads in the background; the first request waits for it)
HEALTHCHECK --interval=5s --timeout=5s --start-period=300s --retries=3 \
    CMD ["/opt/venv/bin/python", "/app/docker/healthcheck.py"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["serve"]
