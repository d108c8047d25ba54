"""Helpers of the API tests: the test client, its base URL, the accounts by role, an API deposit."""

from __future__ import annotations

import atexit
import contextlib
import threading
import warnings
from collections.abc import Iterator

import anyio.from_thread
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


class TestClient(testclient.TestClient):
    """Starlette's test client, whose requests outside `with` share one event loop per process.

    Outside `with`, Starlette's client starts a thread and an event loop for each request and
    stops them after it (a third of the cost of a simple request); here they all go to one
    loop, as a server's requests do. The app's lifespan still runs only inside `with`, which
    keeps a loop of its own for the lifespan and the requests sent inside it, as before.
    """

    __test__ = False

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
