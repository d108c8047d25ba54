"""Zip containers are judged from their central directory before any parser sees them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ingest import ExtractionError, FailureKind, Limits, check_container
from tests import corpus


def _kind(path: Path, limits: Limits) -> FailureKind:
    with pytest.raises(ExtractionError) as caught:
        check_container(path, limits)
    return caught.value.kind


def test_ordinary_documents_pass(tmp_path: Path) -> None:
    for path in (corpus.docx(tmp_path), corpus.odt(tmp_path), corpus.xlsx(tmp_path)):
        check_container(path, Limits())
    check_container(corpus.pdf(tmp_path), Limits())  # not a zip: nothing to check


def test_bomb_by_ratio(tmp_path: Path) -> None:
    path = corpus.zip_bomb_docx(tmp_path, uncompressed_bytes=8 << 20)
    with pytest.raises(ExtractionError) as caught:
        check_container(path, Limits())
    assert caught.value.kind is FailureKind.ZIP_BOMB
    assert caught.value.reason.startswith("zip bomb: a member inflates ")
    assert caught.value.reason.endswith(" times (limit 100)")
    check_container(path, Limits(max_compression_ratio=1e6))


def test_bomb_by_total_size(tmp_path: Path) -> None:
    path = corpus.docx(tmp_path)
    declared = sum(info.file_size for info in zipfile.ZipFile(path).infolist())
    check_container(path, Limits(max_unpacked_bytes=declared))
    with pytest.raises(ExtractionError) as caught:
        check_container(path, Limits(max_unpacked_bytes=declared - 1))
    assert caught.value.kind is FailureKind.ZIP_BOMB
    assert caught.value.reason == (
        f"zip bomb: members inflate to more than {declared - 1:,} bytes in total"
    )


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_nesting_depth(tmp_path: Path, depth: int) -> None:
    path = corpus.nested_docx(tmp_path, depth)
    check_container(path, Limits(max_nesting=depth))
    assert _kind(path, Limits(max_nesting=depth - 1)) is FailureKind.NESTING


def test_nested_bomb_is_found(tmp_path: Path) -> None:
    bomb = corpus.zip_bomb_docx(tmp_path, "inner.docx", uncompressed_bytes=4 << 20)
    outer = corpus.docx(tmp_path, "outer.docx", extra_members={"adjunto.docx": bomb.read_bytes()})
    assert _kind(outer, Limits()) is FailureKind.ZIP_BOMB


def test_a_broken_zip_is_left_to_the_parser(tmp_path: Path) -> None:
    path = tmp_path / "roto.docx"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    check_container(path, Limits())


def test_too_many_members(tmp_path: Path) -> None:
    path = tmp_path / "muchos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(300):
            archive.writestr(f"parte{n}.txt", b"")
    check_container(path, Limits(max_zip_members=300))
    with pytest.raises(ExtractionError) as caught:
        check_container(path, Limits(max_zip_members=299))
    assert caught.value.kind is FailureKind.ZIP_BOMB
    assert caught.value.reason == "zip bomb: 300 members (limit 299)"


def test_too_many_members_in_a_zip64_archive(tmp_path: Path) -> None:
    # 65,535 and more members need the ZIP64 end of central directory (APPNOTE 4.4.21).
    path = tmp_path / "muchos64.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(70_000):
            archive.writestr(zipfile.ZipInfo(f"{n}"), b"")
    with pytest.raises(ExtractionError) as caught:
        check_container(path, Limits())
    assert caught.value.reason == "zip bomb: 70,000 members (limit 10,000)"


def test_a_directory_larger_than_its_count_admits(tmp_path: Path) -> None:
    # zipfile reads as many entries as the directory size holds, whatever the count says.
    path = tmp_path / "mentiroso.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(200):
            archive.writestr(f"{n:0>200}", b"")
    data = bytearray(path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    data[eocd + 8 : eocd + 12] = (1).to_bytes(2, "little") * 2  # claim a single member
    path.write_bytes(bytes(data))
    with pytest.raises(ExtractionError) as caught:
        check_container(path, Limits(max_zip_members=100))
    assert caught.value.kind is FailureKind.ZIP_BOMB
    assert caught.value.reason.startswith("zip bomb: a central directory of ")
