"""Cheap checks of zip containers (DOCX, XLSX, ODT, EPUB, zip) before any parser sees them.

A zip bomb is visible in the central directory: `zipfile.infolist()` gives each member's
compressed and declared uncompressed size without inflating anything. Nested archives are
opened only after their declared size passed the same checks, so the check itself stays bounded.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

from ingest.ports import ExtractionError, FailureKind, Limits

__all__ = ["check_container"]

# Members smaller than this are not judged by ratio: a few bytes of XML that compress to almost
# nothing are normal and harmless.
_RATIO_FLOOR_BYTES = 1 << 20
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# APPNOTE.TXT 4.3.16: the end of central directory record is 22 bytes plus a comment of at most
# 65,535; 4.3.15: a ZIP64 locator of 20 bytes sits right before it, pointing at the ZIP64 record.
_EOCD = b"PK\x05\x06"
_EOCD_MAX = 22 + 65_535
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
# Central directory bytes allowed per permitted member: a DOCX entry takes ~80 (46 fixed + name).
_DIRECTORY_BYTES_PER_MEMBER = 256


def _declared_directory(handle: IO[bytes]) -> tuple[int, int] | None:
    """Return (member count, central directory size) from the end records, before reading it.

    `zipfile` reads the whole central directory and builds one object per entry in it, so a
    directory of millions of entries would cost gigabytes before any other check could run.
    Both numbers are checked: `zipfile` trusts the size, not the count.
    """
    size = handle.seek(0, 2)
    tail_size = min(size, _EOCD_MAX + 20)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        return None
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    directory = int.from_bytes(tail[at + 12 : at + 16], "little")
    if at >= 20 and tail[at - 20 : at - 16] == _ZIP64_LOCATOR:
        handle.seek(int.from_bytes(tail[at - 12 : at - 4], "little"))
        record = handle.read(56)
        if record[:4] == _ZIP64_EOCD and len(record) == 56:
            count = int.from_bytes(record[32:40], "little")
            directory = int.from_bytes(record[40:48], "little")
    return count, directory


def check_container(path: Path, limits: Limits) -> None:
    """Check `path` if it is a zip container; do nothing for other files.

    Raises `ExtractionError` (`ZIP_BOMB`) when a member inflates more than
    `limits.max_compression_ratio` times, all members together exceed
    `limits.max_unpacked_bytes`, or an archive has more than `limits.max_zip_members`
    members, and (`NESTING`) when archives nest deeper than `limits.max_nesting`.
    """
    with path.open("rb") as handle:
        if handle.read(4) not in _ZIP_MAGIC:
            return
        handle.seek(0)
        budget = [limits.max_unpacked_bytes]
        _check_zip(handle, limits, depth=0, budget=budget)


def _check_zip(handle: IO[bytes], limits: Limits, *, depth: int, budget: list[int]) -> None:
    declared = _declared_directory(handle)
    handle.seek(0)
    if declared is not None:
        count, directory = declared
        if count > limits.max_zip_members:
            raise ExtractionError(
                FailureKind.ZIP_BOMB,
                f"zip bomb: {count:,} members (limit {limits.max_zip_members:,})",
            )
        if directory > limits.max_zip_members * _DIRECTORY_BYTES_PER_MEMBER:
            raise ExtractionError(
                FailureKind.ZIP_BOMB,
                f"zip bomb: a central directory of {directory:,} bytes "
                f"for at most {limits.max_zip_members:,} members",
            )
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError):
        # Not a readable zip after all: let the parser say what it is (its failure is reported).
        return
    with archive:
        members = archive.infolist()
        for info in members:
            budget[0] -= info.file_size
            if budget[0] < 0:
                raise ExtractionError(
                    FailureKind.ZIP_BOMB,
                    "zip bomb: members inflate to more than "
                    f"{limits.max_unpacked_bytes:,} bytes in total",
                )
            if info.file_size >= _RATIO_FLOOR_BYTES:
                ratio = info.file_size / max(info.compress_size, 1)
                if ratio > limits.max_compression_ratio:
                    raise ExtractionError(
                        FailureKind.ZIP_BOMB,
                        f"zip bomb: a member inflates {ratio:,.0f} times "
                        f"(limit {limits.max_compression_ratio:,.0f})",
                    )
        for info in members:
            if info.is_dir() or info.file_size < 4:
                continue
            with archive.open(info) as member:
                if member.read(4) not in _ZIP_MAGIC:
                    continue
            if depth + 1 > limits.max_nesting:
                raise ExtractionError(
                    FailureKind.NESTING,
                    f"archives nested more than {limits.max_nesting} levels deep",
                )
            # ZipExtFile is seekable, so the nested archive is read in place: memory stays flat
            # whatever the member's size (the declared sizes were checked above).
            try:
                with archive.open(info) as member:
                    _check_zip(member, limits, depth=depth + 1, budget=budget)
            except (zipfile.BadZipFile, OSError, NotImplementedError):
                continue
