"""The custodian's pages (issue 19 point 6): the approvals queue with approve and deny (the same
use cases, so the same two-person rule and ledger entries as the API), the refusal of one's own
request said plainly, failed jobs with retry, a CSRF token on every form."""

from __future__ import annotations

import re

from sqlalchemy import update

from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit
from tests.unit.vault.web.web_support import entries, later, signed_in, token
from vault import approval_kinds, approvals, jobs, ledger, shred, token_keys
from vault.accounts import add_user
from vault.cases import create_case
from vault.credentials import rotate_token_key
from vault.db.jobs_tables import Job
from vault.parts import Vault
from vault.rotation import rotate

NOTE = "Rosa Quispe asked for it in writing"
REASON = "The court order names another item"


def _item(vault: Vault) -> str:
    with vault.sessions.begin() as session:
        add_user(session, "cleo", "custodian", vault.clock())
    case = create_case(vault, principal(vault, "tina"), "Case of the river").id
    return deposit(vault, principal(vault, "tina"), case, consent=["therapy"], body=b"words")


def test_a_second_custodian_approves_a_shred_and_it_happens(vault: Vault) -> None:
    item = _item(vault)
    asked = approval_kinds.request_shred(vault, principal(vault, "admin"), item, "other", NOTE)
    cleo = signed_in(vault, "cleo")
    queue = cleo.get("/approvals")
    assert queue.status_code == 200 and f'href="/approvals/{asked.id}"' in queue.text
    assert "Shred an item" in queue.text and "waiting for a decision" in queue.text
    assert NOTE not in queue.text  # the note only on the request's own page
    page = cleo.get(f"/approvals/{asked.id}")
    assert NOTE in page.text and "Approve" in page.text
    # No token, no decision (and an `access denied` entry).
    refused = cleo.post(f"/approvals/{asked.id}/approve", data={"csrf": ""})
    assert refused.status_code == 403
    assert approvals.show(vault, principal(vault, "cleo"), asked.id).state == approvals.PENDING
    done = cleo.post(f"/approvals/{asked.id}/approve", data={"csrf": token(page)})
    assert done.status_code == 303 and done.headers["location"] == f"/approvals/{asked.id}"
    assert approvals.show(vault, principal(vault, "cleo"), asked.id).state == approvals.DONE
    assert [e.actor for e in entries(vault, ledger.actions.APPROVAL)] == ["cleo"]
    assert len(entries(vault, ledger.actions.APPROVAL_OUTCOME)) == 1
    assert "approved and done" in cleo.get(f"/approvals/{asked.id}").text


def test_ones_own_request_is_refused_plainly_and_denial_needs_a_reason(vault: Vault) -> None:
    item = _item(vault)
    asked = approval_kinds.request_shred(vault, principal(vault, "admin"), item, "duplicate")
    admin = signed_in(vault, "admin")
    page = admin.get(f"/approvals/{asked.id}")
    assert "You asked for this yourself" in page.text
    assert f'action="/approvals/{asked.id}/approve"' not in page.text
    # Posting anyway (an old page, a crafted form) is refused by the use case, said plainly.
    tried = admin.post(f"/approvals/{asked.id}/approve", data={"csrf": token(page)})
    assert tried.status_code == 403
    assert "A second custodian must approve it: nothing was changed." in tried.text
    assert entries(vault, ledger.actions.APPROVAL) == []

    cleo = signed_in(vault, "cleo")
    form = cleo.get(f"/approvals/{asked.id}")
    blank = cleo.post(f"/approvals/{asked.id}/deny", data={"csrf": token(form), "reason": " "})
    assert (
        blank.status_code == 422
        and "Reason for denying" in blank.text
        and entries(vault, ledger.actions.APPROVAL_DENIAL) == []
    )
    denied = cleo.post(f"/approvals/{asked.id}/deny", data={"csrf": token(form), "reason": REASON})
    assert denied.status_code == 303
    [entry] = entries(vault, ledger.actions.APPROVAL_DENIAL)
    assert entry.actor == "cleo" and REASON not in str(entry.details)  # sealed
    shown = cleo.get(f"/approvals/{asked.id}")
    assert "denied" in shown.text and REASON in shown.text
    assert not shred.is_held(vault, item) and "/approvals/" in cleo.get("/approvals").text


def test_only_custodians_see_the_queue_and_the_jobs(vault: Vault) -> None:
    item = _item(vault)
    approval_kinds.request_shred(vault, principal(vault, "admin"), item, "duplicate")
    tina = signed_in(vault, "tina")
    assert tina.get("/approvals").status_code == 403
    assert tina.get("/jobs").status_code == 403
    assert 'href="/approvals"' not in tina.get("/").text


def test_a_failed_job_is_queued_again(vault: Vault) -> None:
    item = _item(vault)
    with vault.sessions.begin() as session:
        session.execute(
            update(Job).where(Job.item_id == item).values(state=jobs.FAILED, last_error="timeout")
        )
    admin = signed_in(vault, "admin")
    page = admin.get("/jobs")
    with vault.sessions() as session:
        [job] = jobs.list_jobs(session, states=[jobs.FAILED])
    assert job.id in page.text and "timeout" in page.text
    assert admin.post(f"/jobs/{job.id}/retry", data={"csrf": "forged"}).status_code == 403
    again = admin.post(f"/jobs/{job.id}/retry", data={"csrf": token(page)})
    assert again.status_code == 303
    with vault.sessions() as session:
        assert jobs.list_jobs(session, states=[jobs.FAILED]) == []
    assert "No job has failed." in admin.get("/jobs").text
    # A second retry of a job no longer failed is a conflict, not a second queueing.
    assert admin.post(f"/jobs/{job.id}/retry", data={"csrf": token(page)}).status_code == 409


def test_key_status_shows_versions_and_a_pending_retirement(vault: Vault) -> None:
    _item(vault)
    done = rotate(vault, "admin", retire=True)
    assert done.approval is not None
    admin = signed_in(vault, "admin")
    page = admin.get("/keys")
    assert page.status_code == 200
    assert f'<dd id="master">{done.version}</dd>' in page.text
    assert f'href="/approvals/{done.approval}"' in page.text
    assert signed_in(vault, "tina").get("/keys").status_code == 403


def test_key_status_shows_the_token_signing_keys_and_no_private_key(vault: Vault) -> None:
    first = rotate_token_key(vault, "admin")
    # Past the first rotation's overlap: the key it replaced is no longer accepted.
    later(vault, vault.settings.token_max_ttl_seconds + 60)
    second = rotate_token_key(vault, "admin")
    assert second.previous == first.kid and first.previous is not None
    admin = signed_in(vault, "admin")
    page = admin.get("/keys")
    assert page.status_code == 200
    rows = re.findall(
        r'<td class="digest">([0-9a-f]+)</td>\s*<td>[^<]+</td>\s*<td>([^<]+)</td>', page.text
    )
    assert rows[0] == (second.kid, "current: signs new tokens")
    assert rows[1][0] == first.kid and second.previous_until is not None
    until = second.previous_until.strftime("%Y-%m-%d %H:%M")
    assert rows[1][1].endswith(f"its tokens are accepted until {until} UTC")
    assert rows[2][0] == first.previous and rows[2][1].endswith("no longer accepted")
    # The public record only: the private key in the keyring never reaches the page.
    private = token_keys.signing_key(vault.keyring).private_pem
    body = "".join(private.strip().splitlines()[1:-1])
    assert "PRIVATE KEY" not in page.text and body[:40] not in page.text
    assert signed_in(vault, "tina").get("/keys").status_code == 403
