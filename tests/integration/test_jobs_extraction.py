"""The `extract` stage with the real extractor: sealed text, ledger entry, index job, idempotence.

Runs on SQLite and PostgreSQL with Tika in parser processes (iscc-tika): nothing is mocked.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import keys
from tests import corpus
from tests.unit.vault.conftest import _clean_env, principal
from vault import compose, extraction, jobs, ledger
from vault.cases import create_case
from vault.db.jobs_tables import ItemText, Job
from vault.deposit import Deposit
from vault.parts import Vault
from vault.worker import Worker

# The unit tests' settings guard, used here by importing it (this file starts processes).
__all__ = ["_clean_env"]


@pytest.fixture
def vault(vault: Vault, memory_scratch: Path) -> Iterator[Vault]:
    """The vault fixture, its plaintext copies in a directory (in memory) this test can watch."""
    vault.settings = vault.settings.model_copy(
        update={"scratch_dir": memory_scratch, "jobs_backoff_seconds": 0.0}
    )
    yield vault


@pytest.fixture
def worker(vault: Vault) -> Iterator[Worker]:
    running = Worker(vault, stages={jobs.EXTRACT: compose.extract_stage})
    yield running
    running.stop()


def deposit(vault: Vault, path: Path, kind: str = "testimony") -> str:
    case_id = create_case(vault, principal(vault, "tina"), "Case").id
    data = path.read_bytes()
    fields = {"case": case_id, "kind": kind, "title": "T", "consent": "therapy"}
    job = Deposit.start(vault, principal(vault, "tina"), fields, len(data))
    job.write(data)
    return job.commit().item_id


def job_of(vault: Vault, item_id: str) -> Job:
    with vault.sessions() as session:
        job = session.scalars(
            select(Job).where(Job.item_id == item_id, Job.kind == jobs.EXTRACT)
        ).one()
        session.expunge(job)
        return job


def extraction_entries(vault: Vault, item_id: str) -> list[ledger.LedgerEntry]:
    with vault.sessions() as session:
        return [
            e
            for e in ledger.entries(session)
            if e.item_id == item_id and e.action == ledger.actions.METADATA_EXTRACTION
        ]


def raw_objects(vault: Vault) -> bytes:
    root = vault.settings.objects_path
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def scratch_files(vault: Vault) -> list[Path]:
    return [p for p in vault.settings.scratch_dir.rglob("*") if p.is_file()]


@pytest.mark.parametrize("make", [corpus.docx, corpus.pdf, corpus.text])
def test_extracted_text_is_sealed_linked_and_in_the_ledger(
    vault: Vault, worker: Worker, tmp_path: Path, make: object
) -> None:
    marker = f"mk{secrets.token_hex(8)}"
    paragraph = f"{corpus.SPANISH} {marker}"
    if make is corpus.text:
        path = corpus.text(tmp_path, content=paragraph)
    elif make is corpus.pdf:
        path = corpus.pdf(tmp_path, pages=[paragraph])
    else:
        path = corpus.docx(tmp_path, paragraphs=[paragraph])
    item = deposit(vault, path)
    assert worker.run_until_idle() == 1

    text = extraction.read_text(vault, item)
    assert text is not None and marker in text
    with vault.sessions() as session:
        link = session.get(ItemText, item)
        assert link is not None
        assert (link.language, link.chars) == ("es", len(text))
        assert link.object_name == extraction.text_object_name(item, 1)
        assert jobs.ingest_state(session, item).state == jobs.IngestState.EXTRACTED
        index = session.scalars(select(Job).where(Job.item_id == item, Job.kind == "index")).one()
        assert index.state == jobs.QUEUED
    # The text object is an age file the item's identity opens; nothing readable at rest.
    with vault.store.open(link.object_name) as sealed:
        assert sealed.read(21) == b"age-encryption.org/v1"
    assert marker.encode() not in raw_objects(vault)
    assert marker.encode("utf-16-le") not in raw_objects(vault)
    [entry] = extraction_entries(vault, item)
    assert entry.details["language"] == "es" and entry.details["chars"] == len(text)
    assert json.loads(entry.canonical)["tool"] == "Apache Tika (iscc-tika)"
    # The plaintext copy was removed; the worker's private directory holds nothing.
    assert scratch_files(vault) == []
    meta = extraction.read_text_metadata(vault, item)
    assert meta is not None and "content_type" in meta


def test_a_file_the_parser_refuses_fails_with_its_reason_and_leaves_nothing(
    vault: Vault, worker: Worker, tmp_path: Path
) -> None:
    item = deposit(vault, corpus.encrypted_pdf(tmp_path))
    assert worker.run_until_idle() == 1
    with vault.sessions() as session:
        state = jobs.ingest_state(session, item)
    assert state.state == jobs.IngestState.FAILED
    assert state.reason is not None and "encrypted" in state.reason
    assert state.attempts == 1  # a password will not appear on retry
    assert list(vault.store.names(extraction.PREFIX)) == []
    assert extraction_entries(vault, item) == []
    assert scratch_files(vault) == []


def test_a_retried_attempt_replaces_what_a_dead_one_left(
    vault: Vault, worker: Worker, tmp_path: Path
) -> None:
    item = deposit(vault, corpus.docx(tmp_path))
    # Attempt 1 died after writing its object, before its commit: its lease expired.
    now = vault.clock()
    dead = jobs.claim(vault.sessions, "dead", {jobs.EXTRACT}, now=now, lease=timedelta(0))
    assert dead is not None
    with vault.store.writer(extraction.text_object_name(item, 1)) as writer:
        writer.write(b"half an attempt")
        writer.commit()
    assert worker.run_until_idle() == 1
    with vault.sessions() as session:
        link = session.get(ItemText, item)
    assert link is not None and link.object_name == extraction.text_object_name(item, 2)
    assert list(vault.store.names(extraction.PREFIX)) == [link.object_name]
    assert len(extraction_entries(vault, item)) == 1
    # A job queued again by hand finds the text recorded and only completes.
    with vault.sessions.begin() as session:
        job = session.scalars(select(Job).where(Job.item_id == item, Job.kind == "extract")).one()
        job.state = jobs.FAILED
    with vault.sessions.begin() as session:
        jobs.retry(session, job.id, now=vault.clock())
    assert worker.run_until_idle() == 1
    assert len(extraction_entries(vault, item)) == 1
    with vault.sessions() as session:
        assert jobs.ingest_state(session, item).state == jobs.IngestState.EXTRACTED


def test_media_items_are_not_extracted(vault: Vault, worker: Worker, tmp_path: Path) -> None:
    path = tmp_path / "audio.ogg"
    path.write_bytes(os.urandom(4096))
    item = deposit(vault, path, kind="media")
    assert worker.run_until_idle() == 1
    assert extraction.read_text(vault, item) == ""
    with vault.sessions() as session:
        assert jobs.ingest_state(session, item).state == jobs.IngestState.EXTRACTED


def test_a_dead_workers_private_directory_is_swept(tmp_path: Path) -> None:
    dead = tmp_path / f"{extraction.DIR_PREFIX}999999999-abc"
    alive = tmp_path / f"{extraction.DIR_PREFIX}{os.getpid()}-abc"
    for directory in (dead, alive):
        directory.mkdir(mode=0o700)
        (directory / "plaintext").write_bytes(b"words")
    assert extraction.sweep_private_dirs(tmp_path) == 1
    assert not dead.exists() and alive.exists()


def test_the_sealed_text_opens_with_the_item_identity_only(
    vault: Vault, worker: Worker, tmp_path: Path
) -> None:
    item = deposit(vault, corpus.text(tmp_path))
    worker.run_until_idle()
    with vault.sessions() as session:
        link = session.get(ItemText, item)
    assert link is not None
    other, _ = keys.generate_identity()
    with vault.store.open(link.object_name) as sealed, pytest.raises(keys.UnsealError):
        list(keys.open_stream(sealed, other))


def test_one_run_records_a_batch_and_each_failure_stays_its_own(
    vault: Vault, worker: Worker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a slow run gives back is the next test's; here the batch must not depend on how
    # busy the machine is (a loaded CI host took over a second per document).
    monkeypatch.setattr(extraction, "HOLD_SECONDS", 600.0)
    made = [
        corpus.malformed_pdf(tmp_path, "first.pdf"),  # the run's own job fails
        corpus.docx(tmp_path, "second.docx"),
        corpus.encrypted_pdf(tmp_path, "third.pdf"),  # a job of the batch fails
        corpus.docx(tmp_path, "fourth.docx", paragraphs=(corpus.ENGLISH,)),
    ]
    items = [deposit(vault, path) for path in made]
    assert worker.run_until_idle() == 1  # one claim took all four
    with vault.sessions() as session:
        states = jobs.ingest_states(session, items)
        links = {i: session.get(ItemText, i) for i in items}
    assert states[items[0]].state == jobs.IngestState.FAILED
    assert (states[items[0]].reason or "").startswith("the parser refused the file")
    assert states[items[2]] == jobs.ItemIngest(
        jobs.IngestState.FAILED, "encrypted PDF: no password", 1
    )
    for good in (items[1], items[3]):
        assert states[good] == jobs.ItemIngest(jobs.IngestState.EXTRACTED, None, 1)
        assert len(extraction_entries(vault, good)) == 1
    assert links[items[0]] is None and links[items[2]] is None
    assert links[items[3]] is not None and links[items[3]].language == "en"
    # The failures left no text object behind; the two texts are there, sealed.
    assert len(list(vault.store.names(extraction.PREFIX))) == 2


def test_a_slow_run_gives_back_the_jobs_it_has_not_started(
    vault: Vault, worker: Worker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [deposit(vault, corpus.docx(tmp_path, f"{n}.docx")) for n in range(3)]
    monkeypatch.setattr(extraction, "HOLD_SECONDS", 0.0)  # every document counts as slow
    assert worker.run_one("only-one-run")
    with vault.sessions() as session:
        states = jobs.ingest_states(session, items)
    assert states[items[0]].state == jobs.IngestState.EXTRACTED
    # Queued again at once, the attempt given back: free for any worker to take.
    for later in items[1:]:
        assert states[later] == jobs.ItemIngest(jobs.IngestState.QUEUED, None, 0)
        assert job_of(vault, later).lease_owner is None
    assert worker.run_until_idle() == 2
    with vault.sessions() as session:
        assert {s.state for s in jobs.ingest_states(session, items).values()} == {
            jobs.IngestState.EXTRACTED
        }


def test_a_batch_whose_record_fails_leaves_nothing_and_every_job_retries(
    vault: Vault, worker: Worker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [deposit(vault, corpus.docx(tmp_path, f"{n}.docx")) for n in range(3)]
    # All three in the one batch whatever the machine's load (a slow run gives the rest back).
    monkeypatch.setattr(extraction, "HOLD_SECONDS", 600.0)

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(extraction.ledger, "append", refuse)
    assert worker.run_one("a-run")
    for item in items:
        job = job_of(vault, item)
        assert (job.state, job.attempts) == (jobs.QUEUED, 1)  # retried after its backoff
        assert job.last_error == "internal error (RuntimeError)"
        assert extraction_entries(vault, item) == []
    with vault.sessions() as session:
        assert session.scalars(select(ItemText)).all() == []
    assert list(vault.store.names(extraction.PREFIX)) == []  # the sealed texts were removed
    assert scratch_files(vault) == []
