"""The search index port, its adapters and the access-scoped query model."""

from search.errors import (
    IndexBackendError,
    IndexFormatError,
    IndexKeyMismatchError,
    QueryError,
    QuerySyntaxError,
    QueryTooBroadError,
    ScopeRequiredError,
    SearchError,
)
from search.highlight import highlight
from search.ports import (
    UNDETERMINED_LANGUAGE,
    AccessScope,
    Filters,
    Hit,
    Index,
    IndexDocument,
    Query,
    Results,
    VocabularyLog,
    VocabularyStore,
)
from search.vocabulary import MemoryVocabularyStore

__all__ = [
    "UNDETERMINED_LANGUAGE",
    "AccessScope",
    "Filters",
    "Hit",
    "Index",
    "IndexBackendError",
    "IndexDocument",
    "IndexFormatError",
    "IndexKeyMismatchError",
    "MemoryVocabularyStore",
    "Query",
    "QueryError",
    "QuerySyntaxError",
    "QueryTooBroadError",
    "Results",
    "ScopeRequiredError",
    "SearchError",
    "VocabularyLog",
    "VocabularyStore",
    "highlight",
]
