# testimony-vault API and worker image (docs/deploy.md). Build: docker compose build
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TIKA_CLIENT_ONLY=1 \
    TVAULT_HOME=/var/lib/tvault

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/tvault --create-home tvault \
    && chmod 0700 /var/lib/tvault

# OCR (docs/ingest.md): Tesseract and its Spanish, English and orientation models, from Debian.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        tesseract-ocr tesseract-ocr-spa tesseract-ocr-eng tesseract-ocr-osd \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only the distribution's own files: never a local .venv, vault-data or .env.
COPY pyproject.toml README.md ./
COPY vault ./vault
COPY ingest ./ingest
COPY search ./search
COPY keys ./keys
COPY policies ./policies
# pycld2 (language detection) has Linux wheels for x86_64 only: elsewhere (aarch64) it is built
# from its source, with a compiler that is removed again in the same layer.
RUN if ! pip install --only-binary=pycld2 "pycld2>=0.42"; then \
        apt-get update \
        && apt-get install -y --no-install-recommends g++ \
        && pip install "pycld2>=0.42" \
        && apt-get purge -y --auto-remove g++ \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN pip install . && rm -rf /src

USER tvault
WORKDIR /var/lib/tvault
EXPOSE 8000
ENTRYPOINT ["tvault"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
