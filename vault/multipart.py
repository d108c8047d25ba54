"""What the two streaming multipart readers share (the API's deposit in `vault.api.upload`, a
web form in memory in `vault.web.forms`): each part's headers collected from the parser's
callbacks (python-multipart), and the part's field name read from its Content-Disposition."""

from __future__ import annotations

from python_multipart.multipart import parse_options_header


class PartHeaders:
    """The header callbacks of a `MultipartParser` (`on_header_field`, `on_header_value`,
    `on_header_end`), and the current part's Content-Disposition."""

    def __init__(self) -> None:
        self._headers: dict[bytes, bytes] = {}
        self._field, self._value = b"", b""

    def _reset_headers(self) -> None:
        """Forget the previous part's headers (call at each part's beginning)."""
        self._headers, self._field, self._value = {}, b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _disposition(self) -> dict[bytes, bytes]:
        """Return the options of the current part's Content-Disposition (`name`, `filename`)."""
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        return dict(options)
