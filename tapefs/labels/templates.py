"""Label sheet templates: the page, the size of one label cell, the margins and the gaps between
cells, all in millimetres. Cells are numbered row by row from the top left."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LabelInputError

INCH = 25.4
LETTER = (8.5 * INCH, 11 * INCH)
A4 = (210.0, 297.0)


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    page_width: float
    page_height: float
    cell_width: float
    cell_height: float
    left_margin: float
    top_margin: float
    column_gap: float = 0.0
    row_gap: float = 0.0

    @property
    def columns(self) -> int:
        return _fit(self.page_width - self.left_margin, self.cell_width, self.column_gap)

    @property
    def rows(self) -> int:
        return _fit(self.page_height - self.top_margin, self.cell_height, self.row_gap)

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    def cell_origin(self, cell: int) -> tuple[float, float]:
        """The top left corner of a cell on its page (cell counts from 0 over all pages)."""
        row, column = divmod(cell % self.per_page, self.columns)
        return (
            self.left_margin + column * (self.cell_width + self.column_gap),
            self.top_margin + row * (self.cell_height + self.row_gap),
        )


def _fit(room: float, size: float, gap: float) -> int:
    # a small tolerance: 3 × 70 mm fills an A4 page's 210 mm exactly
    return int((room + gap + 1e-6) // (size + gap))


TEMPLATES = {
    template.name: template
    for template in (
        # 1" × 2⅝" address labels, 3 × 10 on US Letter
        Template("avery5160", "Avery 5160 (US Letter, 3 × 10)", *LETTER, 66.675, 25.4, 4.7625, 12.7, 3.175, 0.0),
        Template("avery3420", "Avery Zweckform 3420 (A4, 3 × 17)", *A4, 70.0, 16.9, 0.0, 5.0),
        Template("a4", "plain A4, LTO-sized cells (3 × 17)", *A4, 70.0, 17.0, 0.0, 4.0),
        Template("letter", "plain US Letter, LTO-sized cells (3 × 16)", *LETTER, 70.0, 17.0, 0.0, 4.0),
    )
}
DEFAULT_TEMPLATE = "avery5160"


def template_named(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise LabelInputError(f"unknown template {name!r} (known: {', '.join(TEMPLATES)})") from None
