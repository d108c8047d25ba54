"""What needs two people today: shredding an item, lifting its legal hold, retiring key versions.

Each is a `vault.approvals.Kind`, registered when this module is imported (the API and the CLI
import it), with a `request_*` function for its callers. What runs on approval is the use case
that ran directly before (`vault.shred.shred`, `vault.shred.set_hold`), with the approving
custodian's principal, so its policy check and ledger entry stay as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from sqlalchemy import select

from policies import Principal, Resource, actions, kinds
from vault import approvals, keystate, ledger, shred
from vault.access import authorize, authorize_item, item_resource
from vault.approvals import ApprovalRecord, Kind
from vault.db import ItemKey
from vault.domain import LIFT_HOLD as LIFT_HOLD  # re-exported: the kinds live in domain
from vault.domain import RETIRE_KEYS as RETIRE_KEYS
from vault.domain import SHRED as SHRED
from vault.errors import BadField, Conflict
from vault.parts import Vault

MASTER_KEY: Final = "master-key"  # the subject of a key retirement

SHRED_REASONS: Final = ("consent_withdrawn", "court_order", "duplicate", "other")


def _on_item(action: str) -> Callable[[Vault, Principal, str], Resource]:
    def authorized(vault: Vault, principal: Principal, item_id: str) -> Resource:
        # `authorize_item`: an item the principal may not see answers as a missing one.
        item, _ = authorize_item(vault.sessions, principal, action, item_id)
        return item_resource(item)

    return authorized


def _check_shred(vault: Vault, item_id: str, payload: Mapping[str, Any]) -> None:
    if payload.get("reason") not in SHRED_REASONS:
        raise BadField("reason", f"one of {', '.join(SHRED_REASONS)}")
    if shred.is_held(vault, item_id):
        raise Conflict(f"item {item_id} is under legal hold and cannot be shredded")
    with vault.sessions() as session:
        if session.scalar(select(ItemKey.item_id).where(ItemKey.item_id == item_id)) is None:
            raise Conflict(f"item {item_id} is already crypto-shredded")


def _run_shred(vault: Vault, approver: Principal, record: ApprovalRecord) -> Mapping[str, Any]:
    done = shred.shred(vault, approver, record.subject)
    return {
        "unreadable": len(done.unreadable),
        "deleted": len(done.deleted),
        "locked": len(done.locked),
    }


def _check_lift(vault: Vault, item_id: str, _payload: Mapping[str, Any]) -> None:
    if not shred.is_held(vault, item_id):
        raise Conflict(f"item {item_id} is not under legal hold")


def _run_lift(vault: Vault, approver: Principal, record: ApprovalRecord) -> Mapping[str, Any]:
    return {"lifted": shred.set_hold(vault, approver, record.subject, False)}


def _key(vault: Vault, principal: Principal, _subject: str) -> Resource:
    resource = Resource(kind=kinds.KEY)
    authorize(vault.sessions, principal, actions.KEY_MANAGE, resource)
    return resource


def retirable(vault: Vault) -> tuple[int, ...]:
    """Return the master key versions older than the current one that no item key uses."""
    vault.keyring.reload()  # a rotation in another process added versions
    with vault.sessions() as session:
        current = keystate.current(session)
        in_use = keystate.versions_in_use(session, vault.keyring)
    return tuple(v for v in vault.keyring.versions if v < current and v not in in_use)


def _check_retire(vault: Vault, _subject: str, payload: Mapping[str, Any]) -> None:
    wanted = payload.get("versions")
    if not isinstance(wanted, list) or not wanted or not all(isinstance(v, int) for v in wanted):
        raise BadField("versions", "a list of master key versions")
    free = set(retirable(vault))
    if not set(wanted) <= free:
        busy = ", ".join(str(v) for v in sorted(set(wanted) - free))
        raise Conflict(f"master key version(s) {busy} are current, in use, or not in the keyring")


def _run_retire(vault: Vault, approver: Principal, record: ApprovalRecord) -> Mapping[str, Any]:
    # Looked at again now: only versions older than the current one, which nothing can be
    # wrapped under any more (`vault.keystate`), and which no item key uses at this moment.
    free = set(retirable(vault))
    wanted = sorted(int(v) for v in record.payload["versions"])
    retired = [v for v in wanted if v in free]
    for version in retired:
        vault.keyring.retire(version)
    kept = [v for v in wanted if v not in free]
    with vault.sessions.begin() as session:
        ledger.append(
            session,
            actor=approver,
            action=ledger.actions.KEY_RETIREMENT,
            details={"retired": retired, "kept": kept, "approval": record.id},
        )
    return {"retired": retired, "kept": kept}


approvals.register(
    Kind(SHRED, actions.ITEM_SHRED, True, _on_item(actions.ITEM_SHRED), _check_shred, _run_shred),
)
approvals.register(
    Kind(LIFT_HOLD, actions.ITEM_HOLD, True, _on_item(actions.ITEM_HOLD), _check_lift, _run_lift),
)
approvals.register(
    Kind(RETIRE_KEYS, actions.KEY_MANAGE, False, _key, _check_retire, _run_retire),
)


def request_shred(
    vault: Vault, principal: Principal, item_id: str, reason: str, note: str | None = None
) -> ApprovalRecord:
    """Ask to crypto-shred `item_id` for `reason` (one of `SHRED_REASONS`; "other" needs a
    `note`, sealed). Raises `NotFound`, `Forbidden`, `BadField`, or `Conflict` (under legal
    hold, already shredded, or already asked)."""
    if reason == "other" and not (note or "").strip():
        raise BadField("note", 'a shred request for reason "other" says why in a note')
    return approvals.request(
        vault, principal, SHRED, item_id, payload={"reason": reason}, note=note
    )


def request_lift_hold(vault: Vault, principal: Principal, item_id: str) -> ApprovalRecord:
    """Ask to lift the legal hold on `item_id`. Raises `NotFound`, `Forbidden`, `Conflict`."""
    return approvals.request(vault, principal, LIFT_HOLD, item_id)


def request_key_retirement(vault: Vault, principal: Principal) -> ApprovalRecord | None:
    """Ask to retire every master key version no item key uses; None if there is none.

    Raises `Forbidden` unless `principal` may manage keys, `Conflict` if already asked.
    """
    versions = retirable(vault)
    if not versions:
        return None
    return approvals.request(
        vault, principal, RETIRE_KEYS, MASTER_KEY, payload={"versions": list(versions)}
    )
