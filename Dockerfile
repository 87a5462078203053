# The renewal scoring service: `renewal serve` on port 8000, as a non-root user.
# Stage 1 installs the locked dependencies and the project into /opt/venv with uv;
# stage 2 copies only that environment and the source (no compilers, no caches).

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /src
# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3.11

COPY renewal ./renewal
COPY features ./features
COPY training ./training
COPY service ./service
RUN uv sync --frozen --no-dev --no-editable --python /usr/local/bin/python3.11


FROM python:3.11-slim

LABEL org.opencontainers.image.title="renewal" \
      org.opencontainers.image.description="Renewal prediction service for B2B SaaS" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RENEWAL_DATA_DIR=/var/lib/renewal \
    RENEWAL_MODELS_DIR=/var/lib/renewal/models

RUN groupadd --system --gid 10001 renewal \
    && useradd --system --uid 10001 --gid renewal --home-dir /var/lib/renewal \
       --shell /usr/sbin/nologin renewal \
    && mkdir -p /var/lib/renewal/models \
    && chown -R renewal:renewal /var/lib/renewal

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /var/lib/renewal
VOLUME ["/var/lib/renewal"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=4s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]

# SIGTERM → uvicorn finishes in-flight requests (up to --graceful-seconds) and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["renewal"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
