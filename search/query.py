"""The query language: words, "phrases", AND/OR/NOT, prefix*, fuzzy~N and field filters.

Grammar (AND binds tighter than OR; juxtaposition means AND):

    query    := or_expr?
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*
    unary    := ("NOT" | "-") unary | primary
    primary  := "(" or_expr ")" | PHRASE ["~" N] | FIELD ":" VALUE | WORD ["*" | "~" [N]]

Operators are upper-case only, so the Spanish "o"/"y" and the English "and"/"or" stay words.
Fields: case, kind, language (lang), tag, date (YYYY[-MM[-DD]] or a range A..B, either end
open), year (YYYY or YYYY..YYYY). Errors raise `QuerySyntaxError` with the 0-based position;
messages never repeat what was typed (a query may name a survivor, and errors get logged).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from search.errors import QuerySyntaxError

MAX_FUZZY_DISTANCE = 2
DEFAULT_FUZZY_DISTANCE = 1
MAX_PHRASE_SLOP = 10
MAX_QUERY_CHARS = 2000
MAX_NODES = 200
FIELDS = {
    "case": "case",
    "kind": "kind",
    "language": "language",
    "lang": "language",
    "tag": "tag",
    "date": "date",
    "year": "year",
}


@dataclass(frozen=True, slots=True)
class Word:
    """A plain word (analysed in every language; several tokens make an implicit phrase)."""

    text: str


@dataclass(frozen=True, slots=True)
class Phrase:
    """A quoted phrase, with an optional slop (`"a b"~2`)."""

    text: str
    slop: int = 0


@dataclass(frozen=True, slots=True)
class Prefix:
    """`tort*`: every indexed word beginning with `text` (lowercased, accent-folded)."""

    text: str


@dataclass(frozen=True, slots=True)
class Fuzzy:
    """`Mamani~1`: every indexed word within `distance` edits of `text`."""

    text: str
    distance: int


@dataclass(frozen=True, slots=True)
class FieldIs:
    """`case:`, `kind:`, `language:` or `tag:` equal to `value`."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class DateRange:
    """`date:` or `year:` between `start` and `end`, both inclusive, either open."""

    start: date | None
    end: date | None


@dataclass(frozen=True, slots=True)
class And:
    """Every child must match."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child must match."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The child must not match."""

    child: Node


Node = Word | Phrase | Prefix | Fuzzy | FieldIs | DateRange | And | Or | Not


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "-", "phrase", "word"
    text: str
    position: int


_SPECIAL = '()"'


def _lex(text: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            out.append(_Token(char, char, i))
            i += 1
        elif char == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QuerySyntaxError("unterminated quoted phrase", i)
            j = end + 1
            slop = ""
            if j < n and text[j] == "~":
                k = j + 1
                while k < n and text[k].isdigit():
                    k += 1
                slop = text[j:k]
                j = k
            out.append(_Token("phrase", text[i + 1 : end] + "\x00" + slop, i))
            i = j
        elif char == "-" and (i + 1 < n and not text[i + 1].isspace() and text[i + 1] != ")"):
            out.append(_Token("-", "-", i))
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            # `field:"quoted value"` keeps the quoted part with the field.
            if j < n and text[j] == '"' and text[j - 1] == ":":
                end = text.find('"', j + 1)
                if end < 0:
                    raise QuerySyntaxError("unterminated quoted phrase", j)
                out.append(_Token("word", text[i:j] + text[j + 1 : end], i))
                i = end + 1
            else:
                out.append(_Token("word", text[i:j], i))
                i = j
    return out


def _parse_day(value: str, position: int, *, end: bool) -> date:
    match = re.fullmatch(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?", value)
    if match is None:
        raise QuerySyntaxError("expected a date as YYYY, YYYY-MM or YYYY-MM-DD", position)
    year = int(match.group(1))
    month = int(match.group(2)) if match.group(2) else (12 if end else 1)
    try:
        if match.group(3):
            return date(year, month, int(match.group(3)))
        day = calendar.monthrange(year, month)[1] if end else 1
        return date(year, month, day)
    except ValueError as exc:
        raise QuerySyntaxError("not a valid date", position) from exc


def _date_range(field: str, value: str, position: int) -> DateRange:
    if field == "year" and not re.fullmatch(r"\d{4}(\.\.\d{4})?", value):
        raise QuerySyntaxError("expected year:YYYY or year:YYYY..YYYY", position)
    if ".." in value:
        first, _, last = value.partition("..")
        if not first and not last:
            raise QuerySyntaxError("a date range needs at least one end", position)
        start = _parse_day(first, position, end=False) if first else None
        end = _parse_day(last, position, end=True) if last else None
    else:
        start = _parse_day(value, position, end=False)
        end = _parse_day(value, position, end=True)
    if start is not None and end is not None and start > end:
        raise QuerySyntaxError("the date range ends before it starts", position)
    return DateRange(start, end)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.i = 0
        self.nodes = 0

    def _peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _is_op(self, token: _Token | None, op: str) -> bool:
        return token is not None and token.kind == "word" and token.text == op

    def _count(self, position: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise QuerySyntaxError(f"the query has more than {MAX_NODES} parts", position)

    def parse(self) -> Node | None:
        if self._peek() is None:
            return None
        node = self._or()
        token = self._peek()
        if token is not None:
            raise QuerySyntaxError(
                "unexpected ')'" if token.kind == ")" else "unexpected text", token.position
            )
        return node

    def _or(self) -> Node:
        children = [self._and()]
        while self._is_op(self._peek(), "OR"):
            operator = self.tokens[self.i]
            self.i += 1
            if self._peek() is None or self._peek_closes():
                raise QuerySyntaxError("OR needs something on its right", operator.position)
            children.append(self._and())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def _peek_closes(self) -> bool:
        token = self._peek()
        return token is not None and token.kind == ")"

    def _and(self) -> Node:
        children = [self._unary()]
        while True:
            token = self._peek()
            if token is None or token.kind == ")" or self._is_op(token, "OR"):
                break
            if self._is_op(token, "AND"):
                self.i += 1
                following = self._peek()
                if following is None or following.kind == ")" or self._is_op(following, "OR"):
                    raise QuerySyntaxError("AND needs something on its right", token.position)
            children.append(self._unary())
        return children[0] if len(children) == 1 else And(tuple(children))

    def _unary(self) -> Node:
        token = self._peek()
        if token is not None and (token.kind == "-" or self._is_op(token, "NOT")):
            self.i += 1
            if self._peek() is None:
                raise QuerySyntaxError("NOT needs something on its right", token.position)
            self._count(token.position)
            return Not(self._unary())
        return self._primary()

    def _primary(self) -> Node:
        token = self._peek()
        if token is None:
            raise QuerySyntaxError("the query ends too early", len(self.text))
        self._count(token.position)
        self.i += 1
        if token.kind == "(":
            if self._peek_closes():
                raise QuerySyntaxError("empty parentheses", token.position)
            node = self._or()
            closing = self._peek()
            if closing is None or closing.kind != ")":
                raise QuerySyntaxError("unbalanced '('", token.position)
            self.i += 1
            return node
        if token.kind == ")":
            raise QuerySyntaxError("unbalanced ')'", token.position)
        if token.kind == "-":
            raise QuerySyntaxError("'-' needs a word after it", token.position)
        if token.kind == "phrase":
            body, _, slop = token.text.partition("\x00")
            return self._phrase(body, slop, token.position)
        if token.text in ("AND", "OR", "NOT"):
            raise QuerySyntaxError(f"{token.text} needs something on its left", token.position)
        return self._word(token.text, token.position)

    def _phrase(self, body: str, slop: str, position: int) -> Phrase:
        if not body.strip():
            raise QuerySyntaxError("empty quoted phrase", position)
        if slop == "~":
            raise QuerySyntaxError("'~' after a phrase needs a number", position)
        distance = int(slop[1:]) if slop else 0
        if distance > MAX_PHRASE_SLOP:
            raise QuerySyntaxError(f"phrase slop is at most {MAX_PHRASE_SLOP}", position)
        return Phrase(body, distance)

    def _word(self, text: str, position: int) -> Node:
        name, colon, value = text.partition(":")
        if colon and name.lower() in FIELDS:
            field = FIELDS[name.lower()]
            if not value:
                raise QuerySyntaxError(f"{name}: needs a value", position)
            if field in ("date", "year"):
                return _date_range(field, value, position + len(name) + 1)
            return FieldIs(field, value)
        if "*" in text:
            if text.index("*") != len(text) - 1 or text.count("*") != 1:
                raise QuerySyntaxError("'*' is allowed only at the end of a word", position)
            stem = text[:-1]
            if not re.fullmatch(r"\w{2,}", stem):
                raise QuerySyntaxError("a prefix needs at least 2 letters before '*'", position)
            return Prefix(stem)
        if "~" in text:
            stem, _, distance = text.partition("~")
            if not re.fullmatch(r"\w+", stem) or "~" in distance:
                raise QuerySyntaxError("'~' is allowed only after a single word", position)
            if distance and not distance.isdigit():
                raise QuerySyntaxError("'~' takes a number of edits (1 or 2)", position)
            edits = int(distance) if distance else DEFAULT_FUZZY_DISTANCE
            if not 1 <= edits <= MAX_FUZZY_DISTANCE:
                raise QuerySyntaxError(
                    f"fuzzy distance must be 1 to {MAX_FUZZY_DISTANCE}", position + len(stem)
                )
            return Fuzzy(stem, edits)
        return Word(text)


def parse(text: str) -> Node | None:
    """Parse `text`; return None for an empty query (match everything in scope).

    Raises `QuerySyntaxError` (with the position) on text that is not in the query language.
    """
    if len(text) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(f"the query is longer than {MAX_QUERY_CHARS} characters", 0)
    return _Parser(text).parse()


def positive_leaves(node: Node | None) -> list[Word | Phrase | Prefix | Fuzzy]:
    """Return the text leaves a match can be made of (not under NOT), for highlighting."""
    out: list[Word | Phrase | Prefix | Fuzzy] = []

    def walk(current: Node) -> None:
        if isinstance(current, Word | Phrase | Prefix | Fuzzy):
            out.append(current)
        elif isinstance(current, And | Or):
            for child in current.children:
                walk(child)

    if node is not None:
        walk(node)
    return out
