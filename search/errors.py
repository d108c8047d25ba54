"""The errors the search package raises; every one names what went wrong, never the text."""

from __future__ import annotations


class SearchError(Exception):
    """Base of every error raised by `search`."""


class QueryError(SearchError):
    """The query text cannot be run as written."""


class QuerySyntaxError(QueryError):
    """The query text is not valid in the query language; `position` is the 0-based offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at position {position})")
        self.message = message
        self.position = position


class QueryTooBroadError(QueryError):
    """A prefix or fuzzy term expands to more index terms than one query may carry."""


class ScopeRequiredError(SearchError, TypeError):
    """A query reached an index without an `AccessScope` (deny by default, DESIGN.md promise 4)."""


class IndexKeyMismatchError(SearchError):
    """The index was built with another index key: its digests would match nothing."""


class IndexFormatError(SearchError):
    """The index on disk or on the server has a format or mapping version this code cannot use."""


class IndexBackendError(SearchError):
    """The backend refused or failed an operation (details name ids, never text)."""
