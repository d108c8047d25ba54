"""A Tika server (tika-server-standard 2.x/3.x) over its REST API, through httpx.

Not the `tika` PyPI client, although DESIGN.md names it: its `callServer` turns TLS
certificate checks off unless told otherwise (`verify: False` default), reads the whole response
into memory (no bound on output size), applies its timeout per socket read rather than per job,
and at import adds a log file handler in the temp directory and reads endpoint globals from the
environment. httpx streams the upload from disk and the answer back, so the size and time limits
hold, and it checks certificates. Nothing is ever downloaded.

One request per job: `PUT /rmeta/text` returns a JSON list with one metadata object per document
(the container first, then each embedded one) and the text in `X-TIKA:content`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from ingest._tika import classify_failure, interpret, text_limit
from ingest.containers import check_container
from ingest.language import detect_language
from ingest.ports import Extraction, ExtractionError, FailureKind, Limits

__all__ = ["TikaServerExtractor"]

# JSON may escape every character as \uXXXX (6 bytes); metadata needs some room besides.
_JSON_BYTES_PER_CHAR = 6
_METADATA_ALLOWANCE = 1 << 20


class TikaServerExtractor:
    """Extract by sending the file to the Tika server at `url` (e.g. `http://tika:9998`).

    `Limits.timeout_s` bounds the whole job; `Limits.max_memory_bytes` does not apply here (the
    server's JVM heap, `-Xmx` in docker-compose, bounds its memory).
    """

    def __init__(self, url: str, *, connect_timeout_s: float = 5.0) -> None:
        self._url = url.rstrip("/")
        self._connect_timeout_s = connect_timeout_s
        self._client = httpx.Client()

    def __enter__(self) -> TikaServerExtractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        self._client.close()

    def check(self, timeout_s: float) -> None:
        """Raise `ExtractionError` (`UNAVAILABLE`) unless the server answers `GET /tika` with
        a success within `timeout_s` (its greeting; no redirect followed)."""
        try:
            response = self._client.get(
                f"{self._url}/tika", timeout=timeout_s, follow_redirects=False
            )
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: a closed client
            raise ExtractionError(
                FailureKind.UNAVAILABLE, f"Tika server unreachable: {type(exc).__name__}"
            ) from None
        if not response.is_success:
            raise ExtractionError(
                FailureKind.UNAVAILABLE, f"Tika server answered {response.status_code}"
            )

    def extract(self, path: Path, limits: Limits, *, language: str | None = None) -> Extraction:
        """Extract `path` within `limits`. Raises `ExtractionError` on any failure."""
        if path.stat().st_size == 0:
            raise ExtractionError(FailureKind.EMPTY, "empty file")
        check_container(path, limits)
        deadline = time.monotonic() + limits.timeout_s
        timeout = httpx.Timeout(limits.timeout_s, connect=self._connect_timeout_s)
        headers = {
            "Accept": "application/json",
            # Tika server's write limit: it stops after this many characters.
            "writeLimit": str(limits.max_text_chars + 1),
        }
        max_body = _JSON_BYTES_PER_CHAR * (limits.max_text_chars + 1) + _METADATA_ALLOWANCE
        try:
            with (
                path.open("rb") as upload,
                self._client.stream(
                    "PUT",
                    f"{self._url}/rmeta/text",
                    content=upload,
                    headers=headers,
                    timeout=timeout,
                ) as response,
            ):
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_body:
                        raise text_limit(limits.max_text_chars)
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("deadline")
                status = response.status_code
        except httpx.TimeoutException:
            raise ExtractionError(
                FailureKind.TIMEOUT, f"timed out after {limits.timeout_s:g} s"
            ) from None
        except httpx.TransportError as exc:
            raise ExtractionError(
                FailureKind.UNAVAILABLE, f"Tika server unreachable: {type(exc).__name__}"
            ) from None
        return self._interpret(path, status, bytes(body), limits)

    def _interpret(self, path: Path, status: int, body: bytes, limits: Limits) -> Extraction:
        text_body = body.decode("utf-8", "replace")
        if status in (415,):
            raise ExtractionError(FailureKind.MALFORMED, "the Tika server cannot parse this type")
        if status == 422:
            raise classify_failure(text_body[:4000])
        if status >= 500:
            raise ExtractionError(FailureKind.CRASHED, f"parser crashed: Tika server {status}")
        if status != 200:
            raise ExtractionError(FailureKind.UNAVAILABLE, f"Tika server answered {status}")
        try:
            documents: Any = json.loads(text_body)
        except ValueError:
            raise ExtractionError(
                FailureKind.CRASHED, "Tika server sent an answer that is not JSON"
            ) from None
        if not isinstance(documents, list) or not documents:
            raise ExtractionError(FailureKind.CRASHED, "Tika server sent an empty answer")
        container = documents[0]
        for document in documents:
            for key, value in document.items():
                flag = key.lower().replace("_", "")
                if "writelimitreached" in flag and str(value).lower() == "true":
                    raise text_limit(limits.max_text_chars)
        text = "".join(str(d.get("X-TIKA:content") or "") for d in documents)
        mime, metadata, text = interpret(path, text, container, limits.max_text_chars)
        failure = container.get("X-TIKA:EXCEPTION:container_exception")
        if failure:
            raise classify_failure(str(failure).splitlines()[0])
        return Extraction(
            text=text, mime_type=mime, metadata=metadata, language=detect_language(text)
        )
