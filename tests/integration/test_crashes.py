"""The crash suite (issue 23 point 5): SIGKILL the server during deposits and the worker during
extraction, on SQLite and PostgreSQL, and nothing is lost.

Three clients deposit without stopping while a real `tvault serve` is killed three times and a
real `tvault worker` three times (while it holds a job), each restarted at once
(`tests/crash_support.py`). Then every id a client got back downloads byte-identical, every item
is indexed with no failed job and no custodian's help, the store holds no temp file and no
unreferenced object (the next start's sweep took the killed deposits' objects), and `tvault
verify` is clean. bench/faults.py runs the same with 20 kills of each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import crash_support

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_schema_url")
    return url


def test_kills_of_server_and_worker_lose_nothing(tmp_path: Path, database_url: str | None) -> None:
    outcome = crash_support.run(tmp_path / "vault", database_url=database_url)

    assert (outcome.server_kills, outcome.worker_kills) == (3, 3)
    assert len(outcome.deposited) >= 3 * 4, "too few deposits came back to mean anything"
    assert outcome.mismatched == []
    # A request cut by a kill may have committed: such items exist without a returned id.
    assert outcome.items >= len(outcome.deposited)
    assert outcome.failed_jobs == []
    assert outcome.not_indexed == 0
    assert outcome.temp_files == []
    assert outcome.verify_exit == 0, outcome.verify_output
    assert "unreferenced" not in outcome.verify_output
