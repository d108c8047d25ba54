"""What the vault says about OCR: the ledger's record of it, and the item's ingest steps.

The `metadata extraction` ledger entry of an item says where its text came from
(`source`: `ocr` or `file`) and, for OCR, the engine, its version, the languages and the mean
word confidence (`details_of`). The item view reads the newest such entry back (`reports`), so
the ledger is the one place the fact lives; no column repeats it. None of it is sealed: it is
structural (names, codes, numbers) and the parser's report was reduced to those shapes.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest import Extraction, OcrReport
from vault.jobs import EXTRACT, INDEX, IngestState, ItemIngest
from vault.ledger import actions
from vault.ledger.entry import parse
from vault.ledger.tables import LedgerRow

__all__ = ["OCR_PREFIX", "details_of", "reports", "steps"]

# Reasons of failures that OCR caused begin so (`ingest.ocr`): the ingest steps blame OCR.
OCR_PREFIX: Final = "OCR"


def details_of(extraction: Extraction) -> dict[str, Any]:
    """The ledger details that say where `extraction`'s text came from."""
    report = extraction.ocr
    if report is None:
        return {"source": "file"}
    return {"source": "ocr", "ocr": _as_dict(report)}


def _as_dict(report: OcrReport) -> dict[str, Any]:
    return {
        "engine": report.engine,
        "version": report.version,
        "languages": "+".join(report.languages),
        # RFC 8785 writes numbers as ECMAScript does; one decimal keeps the entry readable.
        "confidence": round(report.confidence, 1),
        "pages": report.pages,
    }


def reports(session: Session, item_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """Return the OCR record of the newest extraction of each of `item_ids` that had one."""
    if not item_ids:
        return {}
    rows = session.execute(
        select(LedgerRow.item_id, LedgerRow.entry)
        .where(
            LedgerRow.item_id.in_(sorted(item_ids)),
            LedgerRow.action == actions.METADATA_EXTRACTION,
        )
        .order_by(LedgerRow.seq)
    )
    found: dict[str, dict[str, Any]] = {}
    for item_id, entry in rows:
        details = parse(entry).details
        if details.get("source") == "ocr" and isinstance(details.get("ocr"), dict):
            found[str(item_id)] = dict(details["ocr"])
        else:  # a later extraction without OCR replaces an earlier one
            found.pop(str(item_id), None)
    return found


def steps(ingest: ItemIngest, ocr: dict[str, Any] | None) -> list[dict[str, str]]:
    """Return the item's ingest as its steps, OCR among them: each `pending`, `running`,
    `done`, `not needed` or `failed`."""
    state = ingest.state
    failed_at = ingest.stage if state == IngestState.FAILED else None
    ocr_failed = failed_at == EXTRACT and (ingest.reason or "").startswith(OCR_PREFIX)
    extracted = state in (IngestState.EXTRACTED, IngestState.INDEXED) or failed_at == INDEX
    if failed_at == EXTRACT:
        extract, ocr_step = ("done", "failed") if ocr_failed else ("failed", "pending")
    elif extracted:
        extract, ocr_step = "done", ("done" if ocr is not None else "not needed")
    elif state == IngestState.EXTRACTING:
        extract, ocr_step = "running", "pending"
    else:
        extract, ocr_step = "pending", "pending"
    if failed_at == INDEX:
        index = "failed"
    elif state == IngestState.INDEXED:
        index = "done"
    else:
        index = "pending"
    return [
        {"step": "extract", "state": extract},
        {"step": "ocr", "state": ocr_step},
        {"step": "index", "state": index},
    ]
