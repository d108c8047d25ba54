"""Every route under /v1 goes through the policy: with a policy that allows nothing, no route
but `/v1/me` (who am I) succeeds for anyone, whatever their role."""

from __future__ import annotations

import re

import policies
from tests.unit.vault.api_support import ROLES, URL, TestClient, deposit
from tests.unit.vault.tokens import token_for
from vault.accounts import add_user
from vault.compose import app_of
from vault.parts import Vault

# Routes that need no policy decision: they only tell the caller who their own token names.
UNDECIDED = {
    ("GET", "/v1/me"),
    # tus discovery: the protocol's version, extensions and size limit, the same for every
    # account and about no case or item; creating an upload is decided (`POST /v1/uploads`).
    ("OPTIONS", "/v1/uploads"),
}
# Routes whose answer is filtered by the policy's search scope rather than refused.
SCOPED = {("POST", "/v1/search")}


def test_no_route_succeeds_when_the_policy_allows_nothing(vault: Vault) -> None:
    with vault.sessions.begin() as session:
        for name in ("ava", "nora", "audrey", "cleo"):
            add_user(session, name, ROLES[name], vault.clock())
    app = app_of(vault)
    clients = {
        name: TestClient(
            app, base_url=URL, headers={"Authorization": f"Bearer {token_for(vault, name, role)}"}
        )
        for name, role in ROLES.items()
    }
    case_id = clients["tina"].post("/v1/cases", json={"name": "c"}).json()["id"]
    item_id = deposit(clients["tina"], case_id, "therapy,legal,advocacy_named")
    ids = {"case_id": case_id, "item_id": item_id, "user": "tina", "version": "1", "job_id": "x"}
    spec = app.openapi()["paths"]
    routes = [
        (method.upper(), path)
        for path, operations in spec.items()
        if path.startswith("/v1/")
        for method in operations
    ]
    assert len(routes) > 15, routes
    previous = policies.use(policies.Engine((), source="nothing"))
    try:
        for method, path in routes:
            url = re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "x"), path)
            for name, client in clients.items():
                response = client.request(method, url, json={}, params={"seq": 0, "old": 0})
                if (method, path) in UNDECIDED:
                    continue
                if (method, path) in SCOPED and response.status_code == 200:
                    # Search answers inside the policy's scope: empty, so nothing is found.
                    assert response.json()["total"] == 0 and not response.json()["hits"], name
                    continue
                assert response.status_code >= 400, (name, method, path, response.status_code)
    finally:
        policies.use(previous)
        for client in clients.values():
            client.close()
