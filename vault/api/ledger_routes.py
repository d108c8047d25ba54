"""Routes of the custody ledger under `/v1/ledger`: checkpoints, proofs, the log key, entries.

The log key, checkpoints and proofs need `ledger.proof` (hashes only: the shipped policy gives it
to every account, since outsiders verify with them); the entries need `ledger.read`, signing a
checkpoint on demand `ledger.verify` (auditors). An inclusion proof carries its entry only for a
principal who may read that entry (`vault.access.may_read_entry`: `ledger.read`, or an entry
about an item they see); anyone else gets the proof and the leaf hash it starts from, so walking
every seq tells them nothing an entry holds (issue 16). Each refusal is itself a ledger entry
(`vault.access.authorize`). The formats are C2SP signed-note / tlog-checkpoint and RFC 9162
proofs; docs/ledger.md says how an outsider checks them.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from policies import Resource, actions, decide, kinds
from vault import ledger
from vault.access import NO_SUCH_ITEM, authorize, authorize_item, may_read_entry
from vault.api.deps import CurrentPrincipal, VaultDep, get_principal
from vault.errors import NotFound
from vault.ledger import checkpoints

router = APIRouter(prefix="/v1/ledger", tags=["ledger"], dependencies=[Depends(get_principal)])

_LEDGER = Resource(kind=kinds.LEDGER)
MAX_ENTRIES = 1000


class CheckpointOut(BaseModel):
    """A signed checkpoint: `note` is the C2SP signed note, byte for byte as signed."""

    size: int
    root: str
    note: str
    time: str


class CheckpointSummary(BaseModel):
    """One signed checkpoint in a list: tree size, root hash (base64) and when it was signed."""

    size: int
    root: str
    time: str


class KeyOut(BaseModel):
    """The log's public key in the C2SP verifier-key format, and the origin it signs as."""

    origin: str
    verifier_key: str


def _out(signed: ledger.SignedCheckpoint) -> CheckpointOut:
    return CheckpointOut(
        size=signed.size,
        root=base64.b64encode(signed.root).decode(),
        note=signed.note,
        time=signed.time.isoformat(),
    )


@router.get("/key")
def get_key(vault: VaultDep, principal: CurrentPrincipal) -> KeyOut:
    """The log's public key (C2SP verifier key `<name>+<key ID>+<base64 key>`)."""
    authorize(vault.sessions, principal, actions.LEDGER_PROOF, _LEDGER)
    log = vault.checkpointer
    return KeyOut(origin=log.origin, verifier_key=log.verifier_key())


@router.get("/checkpoint")
def get_checkpoint(
    vault: VaultDep,
    principal: CurrentPrincipal,
    size: Annotated[int | None, Query(ge=0)] = None,
) -> CheckpointOut:
    """The newest signed checkpoint, or the one of `size`."""
    authorize(vault.sessions, principal, actions.LEDGER_PROOF, _LEDGER)
    with vault.sessions() as session:
        if size is None:
            signed = checkpoints.latest(session)
            if signed is None:
                raise NotFound("no checkpoint has been signed yet")
        else:
            try:
                signed = checkpoints.get(session, size)
            except ledger.LedgerError as exc:
                raise NotFound(str(exc)) from exc
    return _out(signed)


@router.post("/checkpoints", status_code=201)
def post_checkpoint(
    vault: VaultDep,
    principal: CurrentPrincipal,
    item: Annotated[
        str | None, Query(description="Sign so that the entries of this item are included.")
    ] = None,
) -> CheckpointOut:
    """Sign a checkpoint of every committed entry now (the current one if nothing is new).

    Auditors (`ledger.verify`) may always. Anyone who may see `item` (its depositor, those
    granted on its case) may too, so the inclusion of their own deposit can be proved at once
    rather than after the next scheduled checkpoint; a checkpoint holds hashes only, and one is
    signed only when there are new entries. Anyone else is refused as `ledger.verify` refuses,
    or, naming an item they may not see, as for an unknown item.
    """
    if item is not None and not decide(principal, actions.LEDGER_VERIFY, _LEDGER):
        if not may_read_entry(vault.sessions, principal, item):
            authorize_item(vault.sessions, principal, actions.ITEM_STATUS, item, needs_sight=True)
            raise NotFound(NO_SUCH_ITEM)
    else:
        authorize(vault.sessions, principal, actions.LEDGER_VERIFY, _LEDGER)
    return _out(vault.checkpointer.checkpoint(now=vault.clock()))


@router.get("/proof/inclusion")
def get_inclusion(
    vault: VaultDep,
    principal: CurrentPrincipal,
    seq: Annotated[int, Query(ge=0)],
    size: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    """RFC 9162 inclusion proof of entry `seq` in the checkpoint of `size` (default newest); the
    entry itself only for those who may read it (else `entry` is null)."""
    authorize(vault.sessions, principal, actions.LEDGER_PROOF, _LEDGER)
    with vault.sessions() as session:
        try:
            proof = ledger.inclusion(session, seq, size)
        except ledger.ProofError as exc:
            raise NotFound(str(exc)) from exc
    about = json.loads(proof.entry)["item"]
    return proof.to_json(with_entry=may_read_entry(vault.sessions, principal, about))


@router.get("/proof/consistency")
def get_consistency(
    vault: VaultDep,
    principal: CurrentPrincipal,
    old: Annotated[int, Query(ge=0)],
    new: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    """RFC 9162 consistency proof between the checkpoints of sizes `old` and `new`."""
    authorize(vault.sessions, principal, actions.LEDGER_PROOF, _LEDGER)
    with vault.sessions() as session:
        try:
            return ledger.consistency(session, old, new).to_json()
        except ledger.ProofError as exc:
            raise NotFound(str(exc)) from exc


@router.get("/checkpoints")
def list_checkpoints(
    vault: VaultDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES)] = 100,
) -> list[CheckpointSummary]:
    """The signed checkpoints, newest first: size, root and signing time (`ledger.proof`)."""
    authorize(vault.sessions, principal, actions.LEDGER_PROOF, _LEDGER)
    with vault.sessions() as session:
        signed = checkpoints.all_checkpoints(session)
    newest = sorted(signed, key=lambda c: c.size, reverse=True)[:limit]
    return [
        CheckpointSummary(
            size=c.size, root=base64.b64encode(c.root).decode(), time=c.time.isoformat()
        )
        for c in newest
    ]


@router.get("/entries")
def get_entries(
    vault: VaultDep,
    principal: CurrentPrincipal,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES)] = 100,
    item: Annotated[str | None, Query(description="Only entries about this item.")] = None,
) -> list[dict[str, Any]]:
    """Ledger entries from `start`, as their JSON objects (sealed details stay sealed).

    Every entry needs `ledger.read` (auditors). With `item`, the entries about that item (its
    timeline) are open to whoever may see the item, as `may_read_entry` says; anyone else is
    refused as for an item they may not see (`NotFound`, an `access denied` entry).
    """
    if item is None:
        authorize(vault.sessions, principal, actions.LEDGER_READ, _LEDGER)
        with vault.sessions() as session:
            rows = ledger.entries(session, start, start + limit)
            return [json.loads(e.canonical) for e in rows]
    if not may_read_entry(vault.sessions, principal, item):
        # The same refusal, ledger entry and answer as for a hidden or unknown item (issue 16).
        authorize_item(vault.sessions, principal, actions.ITEM_STATUS, item, needs_sight=True)
        raise NotFound(NO_SUCH_ITEM)
    with vault.sessions() as session:
        return [json.loads(e.canonical) for e in ledger.item_entries(session, item, start, limit)]
