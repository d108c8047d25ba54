"""Generators of test documents, made at test time with no downloads (Spanish and English content).

Each function that takes a directory writes one file into it and returns its path (`*_bytes`
functions return the bytes). Office formats (DOCX, ODT, XLSX) are written as zip + XML by hand,
and PDFs as hand-written PDF 1.4 objects, so what each file contains is visible here; only the
encrypted PDF uses `pypdf` (test extra): the PDF standard security handler is not worth
re-implementing in a test helper.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from xml.sax.saxutils import escape

SPANISH = (
    "La declaración del testigo describe la detención arbitraria y la tortura sufridas en el "
    "centro clandestino durante el invierno. Según su relato, los interrogatorios duraban "
    "horas y los guardias amenazaban a su familia. Pidió que su nombre no se publicara y que "
    "la comisión de la verdad recibiera una copia de su testimonio."
)
ENGLISH = (
    "The witness statement describes the arbitrary detention and torture suffered in the "
    "clandestine centre during the winter. According to the account, the interrogations "
    "lasted for hours and the guards threatened the family. The witness asked that the name "
    "not be published and that the truth commission receive a copy of the testimony."
)
TITLE = "Testimonio 17 / Testimony 17"
AUTHOR = "Equipo de acompañamiento"

_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"


# --- PDF -------------------------------------------------------------------------------------


def _pdf_string(text: str) -> bytes:
    """Encode `text` as a PDF literal string in WinAnsiEncoding (Latin-1 covers the accents)."""
    raw = text.encode("cp1252")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _wrap(text: str, width: int = 80) -> list[str]:
    """Split `text` into lines of at most `width` characters on spaces."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def pdf_bytes(pages: Sequence[str], *, title: str = TITLE, author: str = AUTHOR) -> bytes:
    """Return a valid PDF 1.4 document with one page of Helvetica text per item of `pages`."""
    # Object numbers: 1 catalog, 2 pages, 3 font, 4 info, then (page, content) pairs.
    objects: dict[int, bytes] = {}
    kids = []
    for index, page_text in enumerate(pages):
        page_no, content_no = 5 + 2 * index, 6 + 2 * index
        kids.append(f"{page_no} 0 R".encode())
        ops = [b"BT /F1 11 Tf 14 TL 60 760 Td"]
        for line in _wrap(page_text):
            ops.append(_pdf_string(line) + b" Tj T*")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        objects[content_no] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
        objects[page_no] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content_no
        )
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(pages))
    objects[3] = (
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    objects[4] = (
        b"<< /Title "
        + _pdf_string(title)
        + b" /Author "
        + _pdf_string(author)
        + b" /CreationDate (D:20240312101500Z) /Producer (tests.corpus) >>"
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n")
    xref = out.tell()
    size = max(objects) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for number in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets[number])
    out.write(b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\n" % size)
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def pdf(directory: Path, name: str = "testimonio.pdf", pages: Sequence[str] = ()) -> Path:
    """Write a two-page PDF (Spanish, then English) unless `pages` is given."""
    path = directory / name
    path.write_bytes(pdf_bytes(pages or (SPANISH, ENGLISH)))
    return path


def encrypted_pdf(directory: Path, name: str = "cifrado.pdf", password: str = "secreto") -> Path:  # noqa: S107
    """Write a PDF that needs the user password `password` to be opened (RC4-128)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes((SPANISH,)))))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="RC4-128")
    path = directory / name
    with path.open("wb") as out:
        writer.write(out)
    return path


def malformed_pdf(directory: Path, name: str = "roto.pdf") -> Path:
    """Write a file that starts like a PDF and then is garbage: no objects, no xref, no trailer."""
    path = directory / name
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Cat" + bytes(range(256)) * 8)
    return path


def pdf_named_docx(directory: Path, name: str = "en_realidad_pdf.docx") -> Path:
    """Write a PDF whose file name claims it is a DOCX."""
    return pdf(directory, name, pages=(SPANISH,))


# --- Office Open XML (DOCX, XLSX) --------------------------------------------------------------


def _core_xml(title: str, author: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
        'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{escape(title)}</dc:title><dc:creator>{escape(author)}</dc:creator>"
        '<dcterms:created xsi:type="dcterms:W3CDTF">2024-03-12T10:15:00Z</dcterms:created>'
        "</cp:coreProperties>"
    )


def _docx_parts(title: str, author: str) -> dict[str, str]:
    """The parts of a DOCX other than `word/document.xml`."""
    return {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Default Extension="zip" ContentType="application/zip"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            '<Override PartName="/docProps/core.xml" '
            'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Relationships xmlns="{_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_OFFICE_DOC}" Target="word/document.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
            'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
            "</Relationships>"
        ),
        "docProps/core.xml": _core_xml(title, author),
    }


def _paragraph(text: str) -> str:
    return f'<w:p><w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'


def _document_xml(paragraphs: Sequence[str]) -> str:
    body = "".join(_paragraph(text) for text in paragraphs)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{_W_NS}"><w:body>{body}</w:body></w:document>'
    )


def docx(
    directory: Path,
    name: str = "testimonio.docx",
    paragraphs: Sequence[str] = (),
    *,
    title: str = TITLE,
    author: str = AUTHOR,
    extra_members: dict[str, bytes] | None = None,
) -> Path:
    """Write a DOCX with `paragraphs` (default: Spanish then English), title and author."""
    path = directory / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for part, xml in _docx_parts(title, author).items():
            archive.writestr(part, xml)
        archive.writestr("word/document.xml", _document_xml(paragraphs or (SPANISH, ENGLISH)))
        for member, data in (extra_members or {}).items():
            archive.writestr(member, data)
    return path


def zip_bomb_docx(
    directory: Path, name: str = "bomba.docx", uncompressed_bytes: int = 64 << 20
) -> Path:
    """Write a DOCX whose `word/document.xml` inflates to `uncompressed_bytes` (ratio ~1000:1).

    The document is valid Office Open XML: one paragraph of repeated text, so a parser that does
    not check the container first would produce megabytes of text.
    """
    path = directory / name
    chunk = ("sin fin " * 8192).encode()  # 64 KiB of text inside one <w:t>
    head = _document_xml(["__CUT__"]).encode().split(b"__CUT__")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for part, xml in _docx_parts(TITLE, AUTHOR).items():
            archive.writestr(part, xml)
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(head[0])
            for _ in range(max(1, uncompressed_bytes // len(chunk))):
                member.write(chunk)
            member.write(head[1])
    return path


def nested_zip_bytes(depth: int, payload: bytes = b"fondo") -> bytes:
    """Return a zip that holds a zip that holds ... `depth` levels of archives around `payload`."""
    data = payload
    for level in range(depth):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("inner.zip" if level else "payload.txt", data)
        data = buffer.getvalue()
    return data


def nested_docx(directory: Path, depth: int, name: str = "anidado.docx") -> Path:
    """Write a DOCX that embeds a zip nested `depth` levels deep (the DOCX itself is level 0)."""
    return docx(
        directory, name, extra_members={"word/embeddings/adjunto.zip": nested_zip_bytes(depth)}
    )


def xlsx(
    directory: Path,
    name: str = "registro.xlsx",
    rows: Sequence[Sequence[str]] = (),
) -> Path:
    """Write an XLSX with one sheet of inline-string cells (default: a small detention register)."""
    rows = rows or (
        ("Nombre", "Fecha de detención", "Lugar"),
        ("Testigo 17", "1984-07-02", "Comisaría 3"),
        ("Witness 18", "1984-07-09", "Police station 3"),
    )
    cells = []
    for r, row in enumerate(rows, start=1):
        row_cells = "".join(
            f'<c r="{chr(65 + c)}{r}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
            for c, value in enumerate(row)
        )
        cells.append(f'<row r="{r}">{row_cells}</row>')
    sheet_ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    doc_rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/docProps/core.xml" '
            'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Relationships xmlns="{_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_OFFICE_DOC}" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
            'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
            "</Relationships>"
        ),
        "docProps/core.xml": _core_xml("Registro de detenciones", AUTHOR),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<workbook xmlns="{sheet_ns}" xmlns:r="{doc_rel}"><sheets>'
            '<sheet name="Registro" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<Relationships xmlns="{_REL_NS}"><Relationship Id="rId1" '
            f'Type="{doc_rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<worksheet xmlns="{sheet_ns}"><sheetData>{"".join(cells)}</sheetData></worksheet>'
        ),
    }
    path = directory / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for part, xml in parts.items():
            archive.writestr(part, xml)
    return path


# --- OpenDocument (ODT) ----------------------------------------------------------------------


def odt(directory: Path, name: str = "testimonio.odt", paragraphs: Sequence[str] = ()) -> Path:
    """Write an ODT (OpenDocument 1.2 text) with `paragraphs`, title and author."""
    office = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    text_ns = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
    body = "".join(f"<text:p>{escape(p)}</text:p>" for p in paragraphs or (SPANISH, ENGLISH))
    path = directory / name
    with zipfile.ZipFile(path, "w") as archive:
        # OpenDocument 1.2 part 3, 3.3: `mimetype` comes first and is stored uncompressed.
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        archive.writestr(
            "content.xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<office:document-content xmlns:office="{office}" xmlns:text="{text_ns}" '
            f'office:version="1.2"><office:body><office:text>{body}</office:text>'
            "</office:body></office:document-content>",
            zipfile.ZIP_DEFLATED,
        )
        archive.writestr(
            "meta.xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<office:document-meta xmlns:office="{office}" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" office:version="1.2">'
            f"<office:meta><dc:title>{escape(TITLE)}</dc:title>"
            f"<meta:initial-creator>{escape(AUTHOR)}</meta:initial-creator>"
            "<meta:creation-date>2024-03-12T10:15:00</meta:creation-date>"
            "</office:meta></office:document-meta>",
            zipfile.ZIP_DEFLATED,
        )
        archive.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:'
            'manifest:1.0" manifest:version="1.2">'
            '<manifest:file-entry manifest:full-path="/" manifest:version="1.2" '
            'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
            '<manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>'
            "</manifest:manifest>",
            zipfile.ZIP_DEFLATED,
        )
    return path


# --- Text, HTML, e-mail ----------------------------------------------------------------------


def text(
    directory: Path, name: str = "notas.txt", content: str = SPANISH, encoding: str = "utf-8"
) -> Path:
    """Write `content` as plain text in `encoding` (UTF-8 or Latin-1)."""
    path = directory / name
    path.write_bytes(content.encode(encoding))
    return path


def long_text(directory: Path, chars: int, name: str = "largo.txt") -> Path:
    """Write a plain UTF-8 text of at least `chars` characters (repeated Spanish sentences)."""
    repeats = chars // len(SPANISH) + 1
    return text(directory, name, "\n".join([SPANISH] * repeats))


def html(directory: Path, name: str = "informe.html", paragraphs: Sequence[str] = ()) -> Path:
    """Write a UTF-8 HTML page with a title, an author meta tag and `paragraphs`."""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs or (ENGLISH, SPANISH))
    path = directory / name
    path.write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{escape(TITLE)}</title><meta name="author" content="{escape(AUTHOR)}">'
        f"</head><body><h1>Informe</h1>{body}</body></html>",
        encoding="utf-8",
    )
    return path


def eml(directory: Path, name: str = "mensaje.eml") -> Path:
    """Write an RFC 5322 message with an English body and a Spanish DOCX attachment."""
    attachment = docx(directory, "adjunto.docx", (SPANISH,)).read_bytes()
    (directory / "adjunto.docx").unlink()
    message = EmailMessage()
    message["From"] = "Equipo <equipo@example.org>"
    message["To"] = "Archivo <archivo@example.org>"
    message["Subject"] = "Testimonio 17: declaración"
    message["Date"] = "Tue, 12 Mar 2024 10:15:00 +0000"
    message.set_content(ENGLISH)
    message.add_attachment(
        attachment,
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="declaracion.docx",
    )
    path = directory / name
    path.write_bytes(message.as_bytes())
    return path


def empty(directory: Path, name: str = "vacio.pdf") -> Path:
    """Write a 0-byte file."""
    path = directory / name
    path.write_bytes(b"")
    return path
