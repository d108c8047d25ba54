"""Generators of scanned pages for the OCR tests and bench, made at test time with no downloads.

Text is rendered with Pillow in DejaVu Serif (Debian's `fonts-dejavu-core`) at the size of
10-point type scanned at 300 dpi, then optionally degraded as a scanner or a phone camera
would: turned, skewed, blurred, speckled. `cer` measures how well OCR read it back.
"""

from __future__ import annotations

import io
import random
import re
import zlib
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont
from rapidfuzz.distance import Levenshtein

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")
# 10-point type at 300 dpi is ~42 pixels from line to line.
FONT_PIXELS = 36
LINE_PIXELS = 48
MARGIN = 60

SPANISH = (
    "La señora Muñoz declaró que la detención ocurrió en la comisaría número tres, donde pasó "
    "cuatro días sin acceso a un abogado. Según su testimonio, los guardias la interrogaron "
    "durante horas y amenazaron a su niño pequeño. Pidió que su declaración se entregara a la "
    "comisión de la verdad y que su nombre no apareciera en ningún informe público."
)
ENGLISH = (
    "The witness stated that the arrest happened at police station number three, where she "
    "spent four days without access to a lawyer. According to her testimony, the guards "
    "questioned her for hours and threatened her young son. She asked that her statement be "
    "given to the truth commission and that her name appear in no public report."
)
# More paragraphs for the bench, so its pages are not all alike.
MORE = (
    "El médico forense examinó las lesiones el catorce de febrero y certificó quemaduras en "
    "ambas muñecas, compatibles con ataduras. El informe lleva su firma y el sello del hospital.",
    "The medical examiner saw the injuries on the fourteenth of February and certified burns "
    "on both wrists, consistent with restraints. The report bears his signature and the seal.",
    "Años después, la familia reconoció el edificio en una fotografía aérea: el sótano había "
    "sido ampliado y las ventanas tapiadas con ladrillos nuevos.",
    "Years later the family recognised the building in an aerial photograph: the basement had "
    "been extended and the windows bricked up with new bricks.",
)


def _lines(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if line and font.getlength(candidate) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


def render(text: str, width: int = 1600) -> Image.Image:
    """Return `text` typeset on a white grayscale page `width` pixels wide."""
    font = ImageFont.truetype(str(FONT), FONT_PIXELS)
    lines = _lines(text, font, width - 2 * MARGIN)
    page = Image.new("L", (width, 2 * MARGIN + LINE_PIXELS * len(lines)), 255)
    draw = ImageDraw.Draw(page)
    for number, line in enumerate(lines):
        draw.text((MARGIN, MARGIN + number * LINE_PIXELS), line, font=font, fill=0)
    return page


def degrade(page: Image.Image, *, seed: int = 7, turn: int = 90) -> Image.Image:
    """Return `page` turned by `turn` degrees, skewed by 2, blurred and speckled with noise."""
    rng = random.Random(seed)
    image = page.rotate(turn, expand=True, fillcolor=255)
    image = image.rotate(2.0, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    image = image.filter(ImageFilter.GaussianBlur(1.0))
    # Sensor noise (Gaussian, sigma 20 grey levels), then 1 % of pixels turned to specks.
    image = ImageChops.add(image, Image.effect_noise(image.size, 20), 1.0, -128)
    pixels = bytearray(image.tobytes())
    for _ in range(len(pixels) // 100):
        pixels[rng.randrange(len(pixels))] = rng.choice((0, 255))
    return Image.frombytes("L", image.size, bytes(pixels))


def save(image: Image.Image, path: Path, **options: object) -> Path:
    """Write `image` to `path` in the format its suffix names; return `path`."""
    image.save(path, **options)  # type: ignore[arg-type]
    return path


def pdf(pages: list[Image.Image], path: Path) -> Path:
    """Write `pages` as a PDF of images only (a scan), at 300 dpi."""
    first, *rest = [page.convert("L") for page in pages]
    first.save(path, "PDF", resolution=300.0, save_all=True, append_images=rest)
    return path


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """Write a PNG whose header declares `side` x `side` 1-bit pixels in a few hundred bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # 1-bit grayscale
    rows = zlib.compress(b"\x00" + b"\xff" * ((side + 7) // 8), 9)  # one row of the many
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    path.write_bytes(png)
    return path


def corrupt_tiff(path: Path) -> Path:
    """Write a TIFF cut off in the middle of its pixels, as a failed transfer leaves one."""
    buffer = io.BytesIO()
    render(ENGLISH).save(buffer, "TIFF")
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 3])
    return path


def long_scan_pdf(path: Path, pages: int) -> Path:
    """Write a PDF of `pages` pages, each showing the same small image and no text."""
    pixels = zlib.compress(bytes(range(64)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Count %d /Kids [%s] >>"
        % (pages, b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))),
        b"<< /Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream"
        % (len(pixels), pixels),
        b"<< /Length 34 >>\nstream\nq 595 0 0 842 0 0 cm /Im0 Do Q\nendstream",
    ]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
    page += b"/Resources << /XObject << /Im0 3 0 R >> >> >>"
    objects += [page] * pages
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def photo(path: Path, seed: int = 3) -> Path:
    """Write a picture with no text at all: soft blotches of grey, as a photo of a wall."""
    rng = random.Random(seed)
    image = Image.new("L", (800, 600), 180)
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y, r = rng.randrange(800), rng.randrange(600), rng.randrange(20, 120)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=rng.randrange(60, 230))
    image.filter(ImageFilter.GaussianBlur(8)).save(path)
    return path


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def cer(expected: str, recognised: str) -> float:
    """Character error rate: edit distance over the expected length, whitespace runs as one."""
    truth = _normal(expected)
    return Levenshtein.distance(truth, _normal(recognised)) / max(len(truth), 1)
