"""Titles and snippets of search hits, and a helper process that makes part of a page of them.

Most of a search's time goes to what the principal sees of each hit: its sealed title and
sealed extracted text are opened (an X25519 exchange each) and a snippet is made from the
text. That work is pure Python and holds the GIL, so one process cannot spread it over two
cores. `tvault serve` therefore starts one `SearchHelper`: while the request's thread shows
half of a page, the helper process shows the other half (`vault.searching.present`).

What crosses the local pipe to the helper, and stays only in its memory: the query text, and
per hit its item identity, sealed title and text object name; what comes back: the title and
the snippet. This is how `tvault reindex` helpers already receive identities. The helper keeps
nothing between pages: its parsed-identity cache is emptied after each one.

The helper serves one page at a time. When it is busy (another request has it), not yet
started, or has failed, `submit` returns None and the request shows every hit itself, so a
search never waits for it and never fails because of it. A helper that dies or does not answer
within `timeout` seconds is stopped; its hits are shown by the request's thread, and a new
helper is started for later pages.

`tvault serve` runs `SearchHelpers`: one helper per search that may run at once (the search
gate, `TVAULT_SEARCH_CONCURRENCY`), up to one per core. Under load the server process is
bound by its one interpreter lock, not by the cores (bench/RESULTS.md, the load mix: the
server used one core while the machine had CPU to spare), so each search that passes the gate
has a helper of its own to take most of its page out of the server's process.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keys
from ingest import lifeline
from search.highlight import Highlighter
from vault.sealing import open_json, read_sealed_text
from vault.settings import Settings
from vault.storage import ObjectStore, StorageError

log = logging.getLogger(__name__)

SNIPPET_WORDS = 40
# Below this many hits a page is shown by the request's thread alone: the pipe costs more.
MIN_HELPED_HITS = 4
TIMEOUT_SECONDS = 10.0
# After a helper failed, the next one is started no sooner than this: a helper that cannot
# start must not cost every later search a process launch.
RESTART_SECONDS = 30.0
_READY = "ready"

# Opens the object store in the helper from the settings sent to it (`vault.compose.child_store`).
StoreOpener = Callable[[dict[str, object]], ObjectStore]


@dataclass(frozen=True)
class Showable:
    """What is needed to show one hit that carries no redaction obligation."""

    item_id: str
    identity: str = field(repr=False)
    sealed_meta: bytes = field(repr=False)
    text_object: str | None  # None: not extracted (yet)
    language: str | None


@dataclass(frozen=True)
class Shown:
    """The title and snippet of one hit; `problem` names what did not open ("metadata",
    "text"), for the caller's log, never any content."""

    title: str | None
    snippet: str | None
    problems: tuple[str, ...] = ()


def title_of(sealed_meta: bytes, identity: str) -> str | None:
    """Return the title in an item's sealed metadata. Raises `keys.UnsealError`."""
    value = open_json(sealed_meta, identity).get("title")
    return value if isinstance(value, str) else None


def show(store: ObjectStore, highlighter: Highlighter, hit: Showable) -> Shown:
    """Open `hit`'s title and text and make its snippet. A part that does not open (tampered
    or missing: `tvault verify` names it) is None, and named in `problems`."""
    problems: list[str] = []
    try:
        title = title_of(hit.sealed_meta, hit.identity)
    except keys.UnsealError:
        title = None
        problems.append("metadata")
    snippet = None
    if hit.text_object is not None:
        try:
            text = read_sealed_text(store, hit.text_object, hit.identity)
        except (keys.UnsealError, StorageError) as exc:
            problems.append(f"text ({type(exc).__name__})")
        else:
            snippet = highlighter.snippet(text, hit.language, max_words=SNIPPET_WORDS)
    return Shown(title, snippet, tuple(problems))


class Pending:
    """A part of a page the helper is showing; `result` waits for it."""

    def __init__(self, helper: SearchHelper, count: int) -> None:
        self._helper = helper
        self._count = count

    def result(self) -> list[Shown] | None:
        """Return the shown hits, in the order sent, or None if the helper failed (the caller
        then shows them itself)."""
        return self._helper._collect(self._count)


class SearchHelper:
    """One helper process that shows part of a page of search hits (module docstring).

    A `Service`: `start` launches the process in the background and returns at once; `stop`
    ends it. Thread-safe: one page at a time, other callers get None from `submit`.
    """

    def __init__(
        self, settings: Settings, open_store: StoreOpener, *, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        # What the helper needs to open objects (the store's settings); never the passphrase.
        self._settings = settings.model_dump(exclude={"passphrase"})
        # The composition root's child entry (`vault.compose.child_store`), sent by reference.
        self._open_store = open_store
        self._timeout = timeout
        self._busy = threading.Lock()  # held from submit until the result is collected
        self._state = threading.Lock()  # guards the process and the connection
        self._process: Any = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._ready = False
        self._stopped = True
        self._restart_at = 0.0  # time.monotonic() after which a failed helper is replaced
        self.helped = 0  # pages the helper answered (for the operator and the tests)

    def start(self) -> None:
        """Start the helper process (it is ready once it has imported the vault's modules).

        A helper that cannot be started is logged and tried again later: the server runs
        without it meanwhile."""
        with self._state:
            self._stopped = False
            self._launch()

    def stop(self) -> None:
        """Stop the helper process; pages in progress are finished by their own threads."""
        with self._state:
            self._stopped = True
            self._terminate()

    @property
    def alive(self) -> bool:
        """Whether the helper process is running and ready for a page."""
        with self._state:
            return self._usable()

    def submit(self, query_text: str, hits: list[Showable]) -> Pending | None:
        """Send `hits` to be shown for `query_text`; None if the helper cannot take them now."""
        if not hits or not self._busy.acquire(blocking=False):
            return None
        try:
            with self._state:
                if not self._usable():
                    self._busy.release()
                    return None
                assert self._conn is not None
                self._conn.send((query_text, hits))
        except (OSError, ValueError):
            self._fail("the helper's pipe is closed")
            self._busy.release()
            return None
        return Pending(self, len(hits))

    # -- inside ---------------------------------------------------------------------------------

    def _launch(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=True)
        process = context.Process(
            target=_main,
            args=(child, self._open_store, self._settings, os.getpid()),
            name="tvault-search-helper",
            daemon=True,
        )
        started = threading.Event()
        failures: list[OSError] = []

        def launcher() -> None:
            # The helper dies with its parent (`ingest.lifeline`), which for the kernel is the
            # thread that started it: this one, which lives as long as the helper does (a
            # request's thread may end any time).
            try:
                process.start()
            except OSError as exc:
                failures.append(exc)
                return
            finally:
                started.set()
            multiprocessing.connection.wait([process.sentinel])

        threading.Thread(target=launcher, name="tvault-search-helper-parent", daemon=True).start()
        started.wait()
        child.close()
        if failures:  # out of processes or memory: pages are shown without it
            parent.close()
            log.error("search helper: cannot start a process (%s); trying again later", failures[0])
            self._restart_at = time.monotonic() + RESTART_SECONDS
            return
        self._process, self._conn, self._ready = process, parent, False

    def _usable(self) -> bool:
        if self._stopped:
            return False
        if self._process is None:
            if time.monotonic() < self._restart_at:
                return False
            self._launch()  # replaces a failed one; ready on a later page
            return False
        if self._conn is None:
            return False
        if not self._process.is_alive():
            self._restart("the helper process ended")
            return False
        if not self._ready:
            # Ready once it said so; until then the request shows every hit itself.
            try:
                if self._conn.poll():
                    self._ready = self._conn.recv() == _READY
            except (OSError, EOFError):
                self._restart("the helper process ended while starting")
                return False
        return self._ready

    def _collect(self, count: int) -> list[Shown] | None:
        try:
            conn = self._conn
            answer: object = None
            if conn is not None and conn.poll(self._timeout):
                answer = conn.recv()
            if not (isinstance(answer, list) and len(answer) == count):
                self._fail("the helper did not answer in time" if answer is None else "bad answer")
                return None
            self.helped += 1
            return answer
        except (OSError, EOFError):
            self._fail("the helper process ended")
            return None
        finally:
            self._busy.release()

    def _fail(self, reason: str) -> None:
        with self._state:
            self._restart(reason)

    def _restart(self, reason: str) -> None:
        log.error(
            "search helper: %s; pages are shown without it, a new one starts in %.0f s",
            reason,
            RESTART_SECONDS,
        )
        self._terminate()
        self._restart_at = time.monotonic() + RESTART_SECONDS

    def _terminate(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.kill()
            self._process.join(timeout=5)
            self._process = None
        self._ready = False


class SearchHelpers:
    """Several `SearchHelper`s as one: a page goes to the first of them that is free.

    A `Service`, thread-safe, and never waited for, as each of its helpers."""

    def __init__(self, helpers: Sequence[SearchHelper]) -> None:
        self._helpers = tuple(helpers)

    @classmethod
    def for_settings(cls, settings: Settings, open_store: StoreOpener) -> SearchHelpers:
        """Return one helper per search the gate lets run at once, at most one per core."""
        count = max(1, min(settings.search_concurrency, os.cpu_count() or 1))
        return cls([SearchHelper(settings, open_store) for _ in range(count)])

    def start(self) -> None:
        """Start every helper process (in the background, see `SearchHelper.start`)."""
        for helper in self._helpers:
            helper.start()

    def stop(self) -> None:
        """Stop every helper process."""
        for helper in self._helpers:
            helper.stop()

    @property
    def alive(self) -> bool:
        """Whether every helper process is running and ready for a page."""
        return all(helper.alive for helper in self._helpers)

    @property
    def helped(self) -> int:
        """Pages the helpers answered (for the operator and the tests)."""
        return sum(helper.helped for helper in self._helpers)

    def submit(self, query_text: str, hits: list[Showable]) -> Pending | None:
        """Send `hits` to the first free helper; None if none can take them now."""
        for helper in self._helpers:
            pending = helper.submit(query_text, hits)
            if pending is not None:
                return pending
        return None


def _main(
    conn: multiprocessing.connection.Connection,
    open_store: StoreOpener,
    settings: dict[str, object],
    parent: int,
) -> None:
    """The helper process's entry point: `_serve`, deaf to Ctrl-C, dead with its parent
    process `parent` (even one killed with SIGKILL, and in the middle of a page)."""
    lifeline.die_with_parent(parent)
    # Ctrl-C on a terminal reaches the whole process group; the server stops its helper itself
    # (`SearchHelper.stop`, or the pipe closing), so the helper ignores it rather than dying
    # with a traceback in the server's terminal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _serve(conn, open_store, settings)


def _serve(
    conn: multiprocessing.connection.Connection,
    open_store: StoreOpener,
    settings: dict[str, object],
) -> None:
    """The helper process: show each page of hits it is sent until the pipe closes."""
    os.environ.pop("TVAULT_PASSPHRASE", None)  # inherited from the server; not needed here
    store = open_store(settings)
    conn.send(_READY)
    try:
        while True:
            try:
                query_text, hits = conn.recv()
            except EOFError:
                return
            highlighter = Highlighter(query_text)
            try:
                shown = [show(store, highlighter, hit) for hit in hits]
            finally:
                # Nothing of this page stays in the helper, and it is gone before the answer
                # leaves: a caller that has the answer may count on that.
                keys.forget_identities()
            conn.send(shown)
    finally:
        store.close()
