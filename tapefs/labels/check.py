"""Reading a label sheet back as a barcode reader would: poppler's ``pdftoppm`` renders each
page, zbar's ``zbarimg`` decodes the Code 39 symbols. With the template, each cell is cut out
and decoded alone, so every label is found in its own cell."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from .errors import LabelError
from .templates import INCH, Template

DPI = 300
_ZBAR = "{http://zbar.sourceforge.net/2008/barcode}"


@dataclass(frozen=True)
class FoundLabel:
    page: int
    text: str
    #: the cell it was found in, when the template was given
    cell: int | None = None


@dataclass
class GreyImage:
    """One rendered page: 8-bit grey pixels, row by row."""

    width: int
    height: int
    pixels: bytes

    @classmethod
    def read_pgm(cls, path: Path) -> GreyImage:
        data = path.read_bytes()
        fields: list[bytes] = []
        offset = 0
        while len(fields) < 4:  # magic, width, height, maxval; whitespace separated
            while data[offset : offset + 1].isspace():
                offset += 1
            end = offset
            while not data[end : end + 1].isspace():
                end += 1
            fields.append(data[offset:end])
            offset = end
        if fields[0] != b"P5" or fields[3] != b"255":
            raise LabelError(f"{path}: not an 8-bit PGM image")
        width, height = int(fields[1]), int(fields[2])
        return cls(width, height, data[offset + 1 : offset + 1 + width * height])

    def crop(self, x: int, y: int, w: int, h: int) -> GreyImage:
        x, y = max(0, x), max(0, y)
        w, h = min(w, self.width - x), min(h, self.height - y)
        rows = (self.pixels[(y + r) * self.width + x : (y + r) * self.width + x + w] for r in range(h))
        return GreyImage(w, h, b"".join(rows))

    def write_pgm(self, path: Path) -> None:
        path.write_bytes(b"P5\n%d %d\n255\n" % (self.width, self.height) + self.pixels)


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        raise LabelError(f"reading labels needs {tool} (Debian package {package})")


def render_pages(pdf: Path, directory: Path, dpi: int = DPI) -> list[GreyImage]:
    _need("pdftoppm", "poppler-utils")
    if not pdf.is_file():
        raise FileNotFoundError(2, "No such file", str(pdf))
    result = subprocess.run(
        ["pdftoppm", "-gray", "-r", str(dpi), pdf, directory / "page"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise LabelError(f"{pdf}: pdftoppm cannot render it: {result.stderr.strip().splitlines()[-1:]}")
    return [GreyImage.read_pgm(page) for page in sorted(directory.glob("page-*.pgm"), key=lambda p: int(p.stem[5:]))]


def decode(images: list[Path]) -> dict[Path, list[str]]:
    """The Code 39 texts zbarimg finds in each image file."""
    _need("zbarimg", "zbar-tools")
    found: dict[Path, list[str]] = {image: [] for image in images}
    result = subprocess.run(
        ["zbarimg", "--xml", "-q", "-Sdisable", "-Scode39.enable", *images], capture_output=True, text=True
    )
    if result.returncode not in (0, 4):  # 4: no symbol anywhere
        raise LabelError(f"zbarimg failed (exit {result.returncode})")
    for source in ElementTree.fromstring(result.stdout).iter(f"{_ZBAR}source"):
        path = Path(source.get("href"))
        found.setdefault(path, []).extend(data.text or "" for data in source.iter(f"{_ZBAR}data"))
    return found


def mm_to_px(value: float, dpi: int = DPI) -> int:
    return round(value / INCH * dpi)


def read_sheet(pdf: Path, template: Template | None = None) -> list[FoundLabel]:
    """The labels on a PDF sheet, page by page (and cell by cell with the template)."""
    with tempfile.TemporaryDirectory(prefix="tapefs-labels-") as scratch:
        directory = Path(scratch)
        pages = render_pages(pdf, directory)
        if template is None:
            files = [directory / f"page-{n}.pgm" for n in range(1, len(pages) + 1)]
            found = decode(files)
            return [FoundLabel(page, text) for page, file in enumerate(files) for text in sorted(found[file])]
        crops: dict[Path, tuple[int, int]] = {}
        for page, image in enumerate(pages):
            for cell in range(page * template.per_page, (page + 1) * template.per_page):
                x, y = template.cell_origin(cell)
                crop = image.crop(
                    mm_to_px(x), mm_to_px(y), mm_to_px(template.cell_width), mm_to_px(template.cell_height)
                )
                crops[directory / f"cell-{cell}.pgm"] = (page, cell)
                crop.write_pgm(directory / f"cell-{cell}.pgm")
        found = decode(list(crops))
        return [FoundLabel(crops[file][0], text, crops[file][1]) for file in crops for text in found[file]]
