"""The tesseract engine refuses a temporary directory on disk (it runs tesseract, a process of
its own); the other parts of OCR that need no recognition: tests/unit/ingest/test_ocr_parts.py."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from ingest import ExtractionError, FailureKind
from ingest.adapters.tesseract import TesseractEngine, memory_directory
from ingest.scratch import ScratchError, memory_dir


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs Debian's tesseract-ocr")
def test_tesseract_refuses_a_temporary_directory_on_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    disk = Path.cwd()
    try:
        memory_dir(disk)
    except ScratchError:
        pass
    else:
        pytest.skip("this checkout is itself in memory: there is no disk to refuse here")
    monkeypatch.setattr(tempfile, "tempdir", str(disk))
    with pytest.raises(ExtractionError) as caught:
        TesseractEngine()
    assert caught.value.kind == FailureKind.UNAVAILABLE
    assert "not a memory file system" in caught.value.reason
    found = memory_directory()
    assert found is not None
    monkeypatch.setattr(tempfile, "tempdir", found)
    assert TesseractEngine().version().startswith(("4.", "5."))
