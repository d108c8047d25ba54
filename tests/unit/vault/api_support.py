"""Helpers of the API tests: the test client, its base URL, the accounts by role, an API deposit."""

from __future__ import annotations

import atexit
import contextlib
import threading
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import anyio
import anyio.from_thread
import httpx
from starlette.exceptions import StarletteDeprecationWarning

from vault.headers import to_headers

with warnings.catch_warnings():
    # Starlette 1.x asks for `httpx2` in its test client; the `httpx` it wraps works the same.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette import testclient

__all__ = ["BODY", "NAME", "ROLES", "URL", "TestClient", "deposit"]

_PORTAL: anyio.from_thread.BlockingPortal | None = None
_PORTAL_LOCK = threading.Lock()


def _shared_portal() -> anyio.from_thread.BlockingPortal:
    """Return this process's one event loop thread for test requests, started on first use."""
    global _PORTAL
    with _PORTAL_LOCK:
        if _PORTAL is None:
            loop = contextlib.ExitStack()
            _PORTAL = loop.enter_context(
                anyio.from_thread.start_blocking_portal(name="test-client")
            )
            atexit.register(loop.close)
        return _PORTAL


class _Chunks(httpx.SyncByteStream):
    """A response body in the pieces the app sent it in, as Starlette's transport hands it on."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


class _Exchange(testclient._TestClientTransport):
    """Starlette's test transport, sending a request and taking its whole answer in one call to
    the event loop instead of eight or more (each a hand-over between threads)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme in {"ws", "wss"}:
            return super().handle_request(request)
        body = request.read()
        with self.portal_factory() as portal:
            start, chunks, failure, debug = portal.call(self._exchange, self._scope(request), body)
        if failure is not None and self.raise_server_exceptions:
            raise failure
        if start is None:  # the app ended without an answer, as Starlette's transport says
            if self.raise_server_exceptions:
                raise AssertionError("TestClient did not receive any response.")
            return httpx.Response(500, request=request, stream=httpx.ByteStream(b""))
        response = httpx.Response(
            start["status"],
            headers=[(key.decode(), value.decode()) for key, value in start.get("headers", [])],
            stream=_Chunks([] if request.method == "HEAD" else [c for c in chunks if c]),
            request=request,
        )
        if debug is not None:
            response.extensions["http.response.debug"] = debug
        return response

    def _scope(self, request: httpx.Request) -> dict[str, Any]:
        # As Starlette's transport builds it (starlette/testclient.py).
        url = request.url
        port = url.port or {"http": 80, "https": 443}[url.scheme]
        headers = [] if "host" in request.headers else [(b"host", url.netloc)]
        headers += [(k.lower().encode(), v.encode()) for k, v in request.headers.multi_items()]
        return {
            "type": "http",
            "http_version": "1.1",
            "method": request.method,
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "root_path": self.root_path,
            "scheme": url.scheme,
            "query_string": url.query,
            "headers": headers,
            "client": self.client,
            "server": [url.raw_host.decode("ascii"), port],
            "extensions": {"http.response.debug": {}, "http.response.trailers": {}},
            "state": self.app_state.copy(),
        }

    async def _exchange(
        self, scope: dict[str, Any], body: bytes
    ) -> tuple[dict[str, Any] | None, list[bytes], Exception | None, dict[str, Any] | None]:
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []
        debug: dict[str, Any] | None = None
        sent = False
        complete = anyio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body}
            await complete.wait()  # then the client has gone, as Starlette's transport says
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal start, debug
            if message["type"] == "http.response.start":
                assert start is None, 'Received multiple "http.response.start" messages.'
                start = message
            elif message["type"] == "http.response.body":
                assert start is not None and not complete.is_set(), message["type"]
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    complete.set()
            elif message["type"] == "http.response.debug":
                debug = message["info"]

        failure: Exception | None = None
        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # handed to the client, which raises it (raise_server_exceptions)
            failure = exc
        finally:
            complete.set()
        return start, chunks, failure, debug


class TestClient(testclient.TestClient):
    """Starlette's test client, whose requests outside `with` share one event loop per process,
    each sent and answered in one hand-over to that loop (`_Exchange`).

    Outside `with`, Starlette's client starts a thread and an event loop for each request and
    stops them after it (a third of the cost of a simple request); here they all go to one
    loop, as a server's requests do. The app's lifespan still runs only inside `with`, which
    keeps a loop of its own for the lifespan and the requests sent inside it, as before.
    """

    __test__ = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        made = self._transport
        assert isinstance(made, testclient._TestClientTransport)
        self._transport = _Exchange(
            self.app,
            portal_factory=self._portal_factory,
            raise_server_exceptions=made.raise_server_exceptions,
            root_path=made.root_path,
            app_state=self.app_state,
            client=made.client,
        )

    @contextlib.contextmanager
    def _portal_factory(self) -> Iterator[anyio.from_thread.BlockingPortal]:
        if self.portal is not None:  # inside `with`: the loop the lifespan runs in
            yield self.portal
        else:
            yield _shared_portal()


URL = "http://vault.test"
BODY = b"Testimony of Rosa Quispe, born 1961 in Ayacucho. " * 400
NAME = "Rosa Quispe"

ROLES = {
    "admin": "custodian",
    "tina": "therapist",
    "theo": "therapist",
    "lena": "lawyer",
    "ava": "advocate",
    "nora": "advocate",
    "audrey": "auditor",
    "cleo": "custodian",  # the second person of the two-person rule
}


def deposit(client: TestClient, case_id: str, consent: str, body: bytes = BODY) -> str:
    params = {
        "kind": "testimony",
        "title": f"Testimony of {NAME}",
        "consent": consent,
        "filename": "rosa-quispe.pdf",
        "notes": f"{NAME} asked to be called back",
    }
    response = client.post(f"/v1/cases/{case_id}/items", headers=to_headers(params), content=body)
    assert response.status_code == 201, response.text
    item_id: str = response.json()["id"]
    return item_id
