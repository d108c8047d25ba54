"""The resume record of `tvault ingest`: what a run deposited, so that running it again resumes.

A record belongs to one folder ingested into one case of one vault. It lives under
`$XDG_STATE_HOME/tvault/ingest/` (default `~/.local/state/tvault/ingest/`), in a file named by
the SHA-256 of the case id and the folder's absolute path (case ids are random, so a record
never mixes two vaults; the URL is left out, so a run through another address still resumes),
made 0600 in a 0700 directory. It holds no file name or path: a name can identify a survivor
(DESIGN.md promise 1), and the record may outlive the folder. Each file is known by its
content's SHA-256 and its rank among the folder's files with that digest (`slot`); for each,
the idempotency key its deposit was sent with (written before the upload starts) and, once the
vault answered, the item id.
Digests and item ids are the structural metadata the vault keeps in the clear anyway.

A run that ends with nothing failed removes its record; an interrupted run (Ctrl-C, a crash, a
lost connection) or one with failures leaves it, and the next run of the same command skips the
files it names, and resends a file that was in flight under the same key, so the vault answers
with the item it stored, if it did (`vault.idempotency`, keys kept 24 hours).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

VERSION = 1


def directory() -> Path:
    """Return the directory of resume records (`$XDG_STATE_HOME/tvault/ingest`)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tvault" / "ingest"


class Record:
    """The resume record of one `tvault ingest` of a folder into a case."""

    def __init__(self, path: Path, slots: dict[str, dict[str, str]]) -> None:
        self.path = path
        self._slots = slots

    @classmethod
    def open(cls, case: str, folder: Path) -> Record:
        """Return the record of ingesting `folder` into `case` (empty if none).

        A record that cannot be read is ignored (the vault's duplicate check still holds).
        """
        name = hashlib.sha256(f"{case}\n{folder.resolve()}".encode()).hexdigest()
        path = directory() / f"{name[:32]}.json"
        slots: dict[str, dict[str, str]] = {}
        try:
            data: Any = json.loads(path.read_text())
            if isinstance(data, dict) and data.get("version") == VERSION:
                slots = {k: v for k, v in data.get("files", {}).items() if isinstance(v, dict)}
        except (OSError, ValueError):
            pass
        return cls(path, slots)

    def item(self, slot: str) -> str | None:
        """Return the item an earlier run stored for `slot`, if the vault answered it."""
        return self._slots.get(slot, {}).get("item")

    def key(self, slot: str, new_key: str) -> str:
        """Return the idempotency key for `slot`: the one an interrupted attempt used, or
        `new_key`, written down before the upload starts."""
        entry = self._slots.setdefault(slot, {})
        if "key" not in entry:
            entry["key"] = new_key
            self.save()
        return entry["key"]

    def stored(self, slot: str, item_id: str) -> None:
        """Remember that `slot` is stored as `item_id`."""
        self._slots[slot] = {"item": item_id}
        self.save()

    def forget(self, slot: str) -> None:
        """Forget `slot` (skipped as a duplicate, or refused: nothing of it is stored)."""
        if self._slots.pop(slot, None) is not None:
            self.save()

    def save(self) -> None:
        """Write the record atomically (temp file, fsync, rename), readable by its owner only."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        document = json.dumps({"version": VERSION, "files": self._slots}, sort_keys=True)
        fd, temp = tempfile.mkstemp(prefix=".record-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(document)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.path)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)

    def remove(self) -> None:
        """Remove the record: the run is complete."""
        self.path.unlink(missing_ok=True)
