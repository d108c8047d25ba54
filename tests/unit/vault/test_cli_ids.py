"""Ids are checked before they reach a URL (issue 20, points 4 and 10): approvals, jobs and
tokens as items and cases already were; account names are escaped into their path segment."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from vault.cli import app, common

ENV = {"TVAULT_URL": "http://vault.test", "TVAULT_TOKEN": "t"}


def _no_request(url: str, token: str) -> httpx.Client:
    raise AssertionError("a request was built from a malformed id")


@pytest.mark.parametrize(
    "args",
    [
        ["approvals", "show", "../items"],
        ["approvals", "approve", "abc?x=1", "--yes"],
        ["approvals", "deny", "a" * 25 + "/", "--reason", "no"],
        ["jobs", "--retry", "../../v1/items"],
        ["token", "revoke", "ab/cd#x"],
    ],
)
def test_a_malformed_id_is_a_usage_error_before_any_request(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "connect", _no_request)
    done = CliRunner().invoke(app, args, env=ENV)
    assert done.exit_code == 2, done.output
    assert "is not a" in done.output


def test_an_account_name_stays_in_its_path_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json=[])

    def connect(url: str, token: str) -> httpx.Client:
        return httpx.Client(base_url=url, transport=httpx.MockTransport(answer))

    monkeypatch.setattr(common, "connect", connect)
    for args in (["users", "keys", "tina/../x"], ["token", "list", "tina?all=1"]):
        assert CliRunner().invoke(app, args, env=ENV).exit_code == 0
    assert seen == ["/v1/users/tina%2F..%2Fx/keys", "/v1/users/tina%3Fall%3D1/tokens"]
