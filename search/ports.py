"""The Index port and the access-scoped query model every adapter takes and returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from search.errors import ScopeRequiredError

MAX_PAGE_SIZE = 100
FACET_NAMES: tuple[str, ...] = ("case", "kind", "language", "tag", "year")
UNDETERMINED_LANGUAGE = "und"  # BCP 47; the language facet's key for items of no known language


@dataclass(frozen=True, slots=True)
class AccessScope:
    """What a principal may find: items of `cases` whose consent includes any of `consent_any`.

    Built by `policies.search_scope`. An empty scope (no case, or no consent scope) finds nothing.
    With `redact_identities` (the part's rule obliges redaction), the items of this part are
    matched and scored only on their text without identity words: the planner never touches
    the identity-bearing field for them, and scores never depend on it (DESIGN.md promise 11).
    An item that another part without the obligation also reaches is matched as that part says
    (`policies.decide` takes the rule that obliges least).
    """

    cases: frozenset[str]
    consent_any: frozenset[str]
    redact_identities: bool = False

    def __post_init__(self) -> None:
        # A plain set or a str would be iterated into characters; refuse early, fail closed.
        for name in ("cases", "consent_any"):
            if not isinstance(getattr(self, name), frozenset):
                raise TypeError(f"AccessScope.{name} must be a frozenset")
        if not isinstance(self.redact_identities, bool):
            raise TypeError("AccessScope.redact_identities must be a bool")

    @property
    def is_empty(self) -> bool:
        """True when the scope can match no item at all."""
        return not self.cases or not self.consent_any


@dataclass(frozen=True, slots=True)
class IndexDocument:
    """One item as the index sees it. `text` and `metadata` are analysed and digested, never
    stored."""

    item_id: str
    case_id: str
    kind: str
    language: str | None
    created: datetime
    tags: frozenset[str] = frozenset()
    consent: frozenset[str] = frozenset()
    text: str = field(default="", repr=False)  # repr=False: a traceback must not print testimony
    # The folded, lowercased words of the survivor's identity fields (name, aliases, ...): the
    # words of `text` among them are indexed only in the identity-bearing field, which a
    # principal under the redaction obligation never searches.
    identity: frozenset[str] = field(default=frozenset(), repr=False)
    # The item's own words beside its text (title, notes, tags as words): each indexed as a
    # value of its own in the same fields as `text` (so a phrase never joins two of them), under
    # the same identity rule, never stored. A media item, which has no text, is found by these.
    metadata: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class Filters:
    """Structured filters (from API parameters); each non-empty set must match (AND)."""

    cases: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    date_from: date | None = None  # inclusive
    date_to: date | None = None  # inclusive


@dataclass(frozen=True, slots=True)
class Query:
    """A search request. `scope` is required: there is no query without an access scope.

    `scope` is one `AccessScope` or a tuple of them: an item is in scope if one part holds its
    case and one of that part's consent scopes (`policies.Scope.parts`). Parts are kept apart
    because merging them would widen access (a lawyer on case A who is a therapist on case B
    must not see A's therapy-only items). An empty tuple, or only empty parts, finds nothing.
    """

    text: str = field(repr=False)  # a query may name a survivor: keep it out of tracebacks
    scope: AccessScope | tuple[AccessScope, ...]
    filters: Filters = Filters()
    page: int = 1
    page_size: int = 20
    facets: bool = True

    def __post_init__(self) -> None:
        if not valid_scope(self.scope):
            raise ScopeRequiredError("a Query needs an AccessScope or a tuple of them")
        if self.page < 1:
            raise ValueError("page starts at 1")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")

    @property
    def parts(self) -> tuple[AccessScope, ...]:
        """The parts of the scope that can match something."""
        parts = self.scope if isinstance(self.scope, tuple) else (self.scope,)
        return tuple(part for part in parts if not part.is_empty)

    @property
    def offset(self) -> int:
        """Index of the first hit of this page."""
        return (self.page - 1) * self.page_size


def valid_scope(scope: object) -> bool:
    """True if `scope` is an `AccessScope` or a tuple of them (fail closed on anything else)."""
    if isinstance(scope, AccessScope):
        return True
    return isinstance(scope, tuple) and all(isinstance(part, AccessScope) for part in scope)


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked hit: ids and structural metadata only (snippets come from `highlight`)."""

    item_id: str
    score: float
    case_id: str
    kind: str
    language: str | None


@dataclass(frozen=True, slots=True)
class Results:
    """One page of hits, the total in scope, and facet counts computed under the same scope."""

    total: int
    hits: list[Hit]
    facets: Mapping[str, Mapping[str, int]]
    page: int = 1
    page_size: int = 20

    @classmethod
    def empty(cls, query: Query) -> Results:
        """Results with nothing in them, for `query` (every facet present and empty)."""
        facets: dict[str, dict[str, int]] = (
            {name: {} for name in FACET_NAMES} if query.facets else {}
        )
        return cls(0, [], facets, query.page, query.page_size)


@dataclass(frozen=True, slots=True)
class VocabularyLog:
    """What a `VocabularyStore` holds after a position.

    `changes` are packed vocabularies (`search.vocabulary.pack`), to be added in order; with
    `reset`, the first of them is a snapshot that replaces every word known so far (start from
    empty). `position` is where the next `read` starts.
    """

    position: int
    changes: tuple[bytes, ...] = field(default=(), repr=False)
    reset: bool = False


@runtime_checkable
class VocabularyStore(Protocol):
    """Where an index keeps its vocabulary of words, shared by every process that uses the
    index: a log of changes (each the words one commit added), now and then compacted into a
    snapshot.

    **The bytes hold survivors' words in plaintext**: the vault seals each change with `keys`
    before it is stored (in the metadata database, `vault.vocabulary`); never write them into
    the index directory as they are.
    """

    def read(self, after: int) -> VocabularyLog:
        """Return the changes saved after position `after` (0: everything)."""
        ...

    def append(self, change: bytes) -> None:
        """Save `change` after every change saved before it (durably, or in the transaction
        the store was told to join: then it is saved when that transaction commits)."""
        ...

    def replace(self, snapshot: bytes, based_on: int | None) -> None:
        """Save `snapshot` as the whole vocabulary as of position `based_on`: changes up to it
        are dropped, later ones are kept and apply after it (None: every change is dropped)."""
        ...


class Index(Protocol):
    """A full-text index of items that holds no readable text and always searches in a scope."""

    def index(self, docs: Iterable[IndexDocument]) -> int:
        """Add or replace `docs` (by item id); visible after `commit`. Returns how many."""
        ...

    def delete(self, item_id: str) -> None:
        """Remove `item_id` (no error if absent); effective after `commit`."""
        ...

    def commit(self) -> None:
        """Make every change since the last commit durable and searchable."""
        ...

    def rollback(self) -> None:
        """Drop every change not yet committed (DESIGN.md promise 7)."""
        ...

    def search(self, query: Query) -> Results:
        """Run `query` inside its scope. Raises `ScopeRequiredError` without one and
        `QueryError` on a query that cannot run; an empty scope returns `Results.empty`."""
        ...

    def clear(self) -> None:
        """Remove every document and the vocabulary (committed at once), for a reindex."""
        ...

    def count(self) -> int:
        """Return the number of committed documents."""
        ...

    def prune_vocabulary(self) -> int:
        """Forget the words no committed document holds (after deletions and crypto-shredding,
        so a removed item's words do not outlive it in the vocabulary). Returns how many."""
        ...

    def close(self) -> None:
        """Release files, locks and connections."""
        ...
