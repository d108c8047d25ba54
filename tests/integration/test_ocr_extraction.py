"""The extract stage with OCR: the recognised text is sealed like any other, the ledger says it
came from OCR (engine, version, languages, confidence), the item's language picks the model,
and a limit OCR hits fails the job with its reason while the deposit stays as it was."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests import scans
from tests.unit.vault.conftest import _clean_env, principal
from vault import compose, extraction, jobs, ledger, ocr
from vault.cases import create_case
from vault.deposit import Deposit
from vault.parts import Vault
from vault.worker import Worker

# The unit tests' settings guard, used here by importing it (this file starts processes).
__all__ = ["_clean_env"]

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="needs Debian's tesseract-ocr (make tools)"
)


@pytest.fixture
def vault(vault: Vault, memory_scratch: Path) -> Iterator[Vault]:
    vault.settings = vault.settings.model_copy(
        update={"scratch_dir": memory_scratch, "jobs_backoff_seconds": 0.0, "extract_max_pages": 2}
    )
    yield vault


def _run(vault: Vault) -> None:
    worker = Worker(vault, stages={jobs.EXTRACT: compose.extract_stage})
    try:
        assert worker.run_until_idle() == 1
    finally:
        worker.stop()


def _deposit(vault: Vault, path: Path, **fields: str) -> str:
    case_id = create_case(vault, principal(vault, "tina"), "Case").id
    data = path.read_bytes()
    fields = {"case": case_id, "kind": "document", "title": "T", "consent": "therapy", **fields}
    job = Deposit.start(vault, principal(vault, "tina"), fields, len(data))
    job.write(data)
    return job.commit().item_id


def _entry(vault: Vault, item_id: str) -> ledger.LedgerEntry:
    with vault.sessions() as session:
        (entry,) = [
            e
            for e in ledger.entries(session)
            if e.item_id == item_id and e.action == ledger.actions.METADATA_EXTRACTION
        ]
    return entry


def _stored(vault: Vault) -> bytes:
    return b"".join(p.read_bytes() for p in vault.settings.objects_path.rglob("*") if p.is_file())


def test_recognised_text_is_sealed_and_the_ledger_says_ocr(vault: Vault, tmp_path: Path) -> None:
    item = _deposit(
        vault, scans.save(scans.render(scans.ENGLISH), tmp_path / "s.png"), language="en"
    )
    _run(vault)
    text = extraction.read_text(vault, item)
    assert text is not None and scans.cer(scans.ENGLISH, text) <= 0.03
    assert b"police station" not in _stored(vault)  # sealed, like any extracted text
    details = _entry(vault, item).details
    assert details["source"] == "ocr" and details["mime_type"] == "image/png"
    report = details["ocr"]
    assert report["engine"] == "tesseract" and report["version"].startswith(("4.", "5."))
    # The depositor said English: the English model alone read it.
    assert report["languages"] == "eng" and report["pages"] == 1
    assert 80 < report["confidence"] <= 100
    with vault.sessions() as session:
        assert ocr.reports(session, [item]) == {item: report}
        state = jobs.ingest_state(session, item)
    assert ocr.steps(state, report)[1] == {"step": "ocr", "state": "done"}


def test_with_ocr_off_the_ledger_says_the_text_came_from_the_file(
    vault: Vault, tmp_path: Path
) -> None:
    vault.settings = vault.settings.model_copy(update={"ocr": "off"})
    item = _deposit(vault, scans.save(scans.render(scans.ENGLISH), tmp_path / "s.png"))
    _run(vault)
    assert extraction.read_text(vault, item) == ""
    assert _entry(vault, item).details["source"] == "file"
    with vault.sessions() as session:
        assert ocr.reports(session, [item]) == {}
        state = jobs.ingest_state(session, item)
    assert ocr.steps(state, None)[1] == {"step": "ocr", "state": "not needed"}


def test_a_scan_over_the_page_limit_fails_its_job_and_keeps_the_deposit(
    vault: Vault, tmp_path: Path
) -> None:
    path = tmp_path / "three.tiff"
    blank = Image.new("L", (40, 40), 255)
    blank.save(path, save_all=True, append_images=[blank, blank])
    item = _deposit(vault, path)
    before = hashlib.sha256(_stored(vault)).hexdigest()
    _run(vault)
    with vault.sessions() as session:
        state = jobs.ingest_state(session, item)
    assert state.state == jobs.IngestState.FAILED and state.stage == jobs.EXTRACT
    assert state.reason is not None
    assert state.reason.startswith("OCR refused: 3 pages to recognise, more than the 2-page limit")
    assert state.attempts == 1  # not retried: another attempt would meet the same limit
    assert ocr.steps(state, None) == [
        {"step": "extract", "state": "done"},
        {"step": "ocr", "state": "failed"},
        {"step": "index", "state": "pending"},
    ]
    assert hashlib.sha256(_stored(vault)).hexdigest() == before
