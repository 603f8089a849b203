"""A sheet of labels: where each label goes on the template's pages, how one label is drawn
(a text strip above the Code 39 bars), and the sheet written as PDF, SVG or PNG.

Every label is an LTO-sized band (at most 16.9 mm high) centred in its cell: a text strip on
top and 12 mm of bars at the bottom. The symbol takes 10/12 of the cell's width and is centred,
which leaves a quiet zone of 1/12 of the width (about 15 narrow elements) on either side.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

from . import code39
from .errors import LabelError, LabelInputError
from .templates import Template

LTO_LABEL_HEIGHT = 16.9
BAR_HEIGHT = 12.0
SYMBOL_SHARE = 10 / 12
STYLES = ("color", "frame", "simple")
FORMATS = ("pdf", "svg", "png")
PNG_DPI = 300
PT_PER_MM = 72 / 25.4

#: fill of a digit's cell in the "color" style, so a row of tapes reads at a glance
DIGIT_COLOURS = {
    "0": "#BB282E", "1": "#FAE54A", "2": "#9AC653", "3": "#01A5E2", "4": "#9EAAB6",
    "5": "#D97E35", "6": "#E27B99", "7": "#67A945", "8": "#F6B855", "9": "#705A81",
}  # fmt: skip


@dataclass(frozen=True)
class Calibration:
    """A printer's correction: every coordinate is scaled by ``scale`` about the page's top left
    corner, then moved by the offsets (mm)."""

    offset_x: float = 0.0
    offset_y: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class Placement:
    text: str
    page: int
    cell: int
    #: the top left corner of the cell on its page, in mm (before calibration)
    x: float
    y: float


@dataclass(frozen=True)
class BarcodeBox:
    """Where a label's bars are, relative to its cell's top left corner (mm)."""

    left: float
    top: float
    narrow: float
    width: float
    height: float = BAR_HEIGHT


def layout(texts: list[str], template: Template, skip: int = 0) -> list[Placement]:
    """Each label's page and cell; the first ``skip`` cells (used labels of a sheet) stay empty."""
    if skip < 0:
        raise LabelInputError(f"skip must be 0 or more, not {skip}")
    placements = []
    for index, text in enumerate(texts):
        cell = skip + index
        x, y = template.cell_origin(cell)
        placements.append(Placement(text, cell // template.per_page, cell, x, y))
    return placements


def band_height(template: Template) -> float:
    return min(template.cell_height, LTO_LABEL_HEIGHT)


def barcode_box(template: Template, text: str) -> BarcodeBox:
    if band_height(template) < BAR_HEIGHT + 2:
        raise LabelInputError(f"template {template.name}: cells lower than {BAR_HEIGHT + 2} mm cannot hold a label")
    symbol_width = template.cell_width * SYMBOL_SHARE
    narrow = symbol_width / code39.symbol_units(text)
    band_top = (template.cell_height - band_height(template)) / 2
    return BarcodeBox(
        left=(template.cell_width - symbol_width) / 2,
        top=band_top + band_height(template) - BAR_HEIGHT,
        narrow=narrow,
        width=symbol_width,
    )


class _Pen:
    """Draws in mm on one page with the calibration applied."""

    def __init__(self, calibration: Calibration):
        self.calibration = calibration

    def at(self, x: float, y: float) -> tuple[float, float]:
        c = self.calibration
        return x * c.scale + c.offset_x, y * c.scale + c.offset_y

    def rect(self, x: float, y: float, w: float, h: float, fill: str | None, outline: bool = False) -> None:
        raise NotImplementedError

    def text(self, centre_x: float, baseline_y: float, size: float, text: str) -> None:
        raise NotImplementedError


def draw_label(pen: _Pen, placement: Placement, template: Template, style: str) -> None:
    box = barcode_box(template, placement.text)
    x0, y0 = placement.x, placement.y
    for offset, width in code39.bars(placement.text):
        pen.rect(x0 + box.left + offset * box.narrow, y0 + box.top, width * box.narrow, box.height, "#000000")
    strip_top = y0 + (template.cell_height - band_height(template)) / 2
    strip_height = box.top - (strip_top - y0)
    text_size = min(strip_height * 0.75, 4.0)
    baseline = strip_top + (strip_height + text_size * 0.7) / 2
    if style == "simple":
        # each character above its own bars
        step = (code39.CHARACTER_UNITS + code39.GAP_UNITS) * box.narrow
        first = x0 + box.left + step + code39.CHARACTER_UNITS * box.narrow / 2
        for index, character in enumerate(placement.text):
            pen.text(first + index * step, baseline, text_size, character)
        return
    serial, media_type = placement.text[:-2], placement.text[-2:]
    cell_width = template.cell_width / 8
    for index, character in enumerate(serial):
        left = x0 + index * cell_width
        fill = DIGIT_COLOURS.get(character) if style == "color" else None
        pen.rect(left, strip_top, cell_width, strip_height, fill, outline=True)
        pen.text(left + cell_width / 2, baseline, text_size, character)
    type_left = x0 + len(serial) * cell_width
    pen.rect(type_left, strip_top, template.cell_width - type_left + x0, strip_height, None, outline=True)
    pen.text(type_left + cell_width, baseline, text_size * 0.8, media_type)


class _PdfPen(_Pen):
    def __init__(self, pdf: FPDF, calibration: Calibration):
        super().__init__(calibration)
        self.pdf = pdf
        self.fill: str | None = None
        self.font_size: float | None = None

    def rect(self, x, y, w, h, fill, outline=False):
        if fill and fill != self.fill:
            self.pdf.set_fill_color(*_rgb(fill))
            self.fill = fill
        px, py = self.at(x, y)
        scale = self.calibration.scale
        style = ("F" if fill else "") + ("D" if outline else "")
        self.pdf.rect(px, py, w * scale, h * scale, style=style or "D")

    def text(self, centre_x, baseline_y, size, text):
        size_pt = size * PT_PER_MM * self.calibration.scale
        if size_pt != self.font_size:
            self.pdf.set_font("helvetica", "B", size_pt)
            self.font_size = size_pt
        px, py = self.at(centre_x, baseline_y)
        self.pdf.text(px - self.pdf.get_string_width(text) / 2, py, text)


class _SvgPen(_Pen):
    def __init__(self, calibration: Calibration):
        super().__init__(calibration)
        self.parts: list[str] = []

    def rect(self, x, y, w, h, fill, outline=False):
        px, py = self.at(x, y)
        scale = self.calibration.scale
        stroke = ' stroke="#000" stroke-width="0.2"' if outline else ""
        self.parts.append(
            f'<rect x="{px:.3f}" y="{py:.3f}" width="{w * scale:.3f}" height="{h * scale:.3f}"'
            f' fill="{fill or "none"}"{stroke}/>'
        )

    def text(self, centre_x, baseline_y, size, text):
        px, py = self.at(centre_x, baseline_y)
        self.parts.append(
            f'<text x="{px:.3f}" y="{py:.3f}" font-size="{size * self.calibration.scale:.3f}"'
            f' font-family="Helvetica, Arial, sans-serif" font-weight="bold" text-anchor="middle">{text}</text>'
        )


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _pages(placements: list[Placement]) -> Iterator[list[Placement]]:
    for page in range(placements[-1].page + 1):
        yield [p for p in placements if p.page == page]


def render_pdf(placements: list[Placement], template: Template, style: str, calibration: Calibration) -> bytes:
    pdf = FPDF(unit="mm", format=(template.page_width, template.page_height))
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_line_width(0.2)
    pdf.set_creator("tapefs labels")
    for page in _pages(placements):
        pdf.add_page()
        pen = _PdfPen(pdf, calibration)
        for placement in page:
            draw_label(pen, placement, template, style)
    return bytes(pdf.output())


def render_svg_pages(
    placements: list[Placement], template: Template, style: str, calibration: Calibration
) -> list[str]:
    pages = []
    for page in _pages(placements):
        pen = _SvgPen(calibration)
        for placement in page:
            draw_label(pen, placement, template, style)
        w, h = template.page_width, template.page_height
        pages.append(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}mm" height="{h}mm" viewBox="0 0 {w} {h}">\n'
            '<rect width="100%" height="100%" fill="#fff"/>\n' + "\n".join(pen.parts) + "\n</svg>\n"
        )
    return pages


def output_paths(path: Path, pages: int, fmt: str) -> list[Path]:
    """A PDF holds every page; SVG and PNG are one file per page: ``path`` itself for a single
    page, else ``NAME-1.svg``, ``NAME-2.svg``, ... next to it."""
    if fmt == "pdf" or pages == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{page}{path.suffix}") for page in range(1, pages + 1)]


def format_for(path: Path, fmt: str | None) -> str:
    fmt = fmt or path.suffix.lstrip(".").lower() or "pdf"
    if fmt not in FORMATS:
        raise LabelInputError(f"unknown output format {fmt!r} (known: {', '.join(FORMATS)})")
    return fmt


def write_sheet(
    path: Path,
    texts: list[str],
    template: Template,
    skip: int = 0,
    style: str = "color",
    fmt: str | None = None,
    calibration: Calibration = Calibration(),
) -> list[Path]:
    """Write the labels to path (see output_paths); returns the files written. Every input is
    checked before the first byte is written, and files appear whole or not at all."""
    fmt = format_for(path, fmt)
    if style not in STYLES:
        raise LabelInputError(f"unknown style {style!r} (known: {', '.join(STYLES)})")
    if calibration.scale <= 0:
        raise LabelInputError(f"scale must be above 0, not {calibration.scale}")
    placements = layout(texts, template, skip)
    for text in set(texts):
        barcode_box(template, text)
    targets = output_paths(path, placements[-1].page + 1, fmt)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(2, "No such directory", str(directory))
    with tempfile.TemporaryDirectory(dir=directory, prefix=".labels-") as scratch:
        staged = [Path(scratch) / target.name for target in targets]
        if fmt == "svg":
            for file, page in zip(staged, render_svg_pages(placements, template, style, calibration), strict=True):
                file.write_text(page)
        else:
            pdf = render_pdf(placements, template, style, calibration)
            if fmt == "pdf":
                staged[0].write_bytes(pdf)
            else:
                _pdf_to_png(pdf, staged)
        for file, target in zip(staged, targets, strict=True):
            os.replace(file, target)
    return targets


def _pdf_to_png(pdf: bytes, files: list[Path]) -> None:
    if shutil.which("pdftoppm") is None:
        raise LabelError("PNG output needs pdftoppm (Debian package poppler-utils)")
    scratch = files[0].parent
    source = scratch / "sheet.pdf"
    source.write_bytes(pdf)
    for page, file in enumerate(files, start=1):
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                str(PNG_DPI),
                "-f",
                str(page),
                "-l",
                str(page),
                "-singlefile",
                source,
                file.with_suffix(""),
            ],
            check=True,
            capture_output=True,
        )
        file.with_suffix(".png").replace(file)
    source.unlink()
