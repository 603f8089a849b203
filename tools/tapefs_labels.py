"""``tapefs labels``: print barcode label sheets for cartridges and read them back."""

from __future__ import annotations

from pathlib import Path

import click

from tapefs.labels.check import read_sheet
from tapefs.labels.label_set import DEFAULT_MEDIA_TYPE, MEDIA_TYPES, label_texts
from tapefs.labels.sheet import FORMATS, STYLES, Calibration, write_sheet
from tapefs.labels.templates import DEFAULT_TEMPLATE, TEMPLATES, template_named
from tapefs_tools.cli import emit, kebab_keys, output_format_option, print_table


@click.group("labels")
def labels() -> None:
    """Barcode label sheets for LTO cartridges."""


@labels.command()
@click.option("--prefix", required=True, help="the first characters of each label (A-Z, 0-9)")
@click.option("--start", type=int, default=1, show_default=True, help="number of the first label")
@click.option("--count", type=int, required=True, help="how many labels")
@click.option("--output", required=True, type=click.Path(path_type=Path), help="the file to write")
@click.option(
    "--type",
    "media_type",
    default=DEFAULT_MEDIA_TYPE,
    show_default=True,
    help=f"media type suffix: {', '.join(MEDIA_TYPES)}",
)
@click.option("--template", default=DEFAULT_TEMPLATE, show_default=True, help=f"sheet: {', '.join(TEMPLATES)}")
@click.option(
    "--skip", type=int, default=0, show_default=True, help="leave the first N cells empty (a partly used sheet)"
)
@click.option("--style", default="color", show_default=True, help=f"{', '.join(STYLES)}")
@click.option("--format", "fmt", help=f"{', '.join(FORMATS)} (default: from the file name, else pdf)")
@click.option("--calibrate-x", type=float, default=0.0, show_default=True, help="move everything right by MM")
@click.option("--calibrate-y", type=float, default=0.0, show_default=True, help="move everything down by MM")
@click.option("--scale", type=float, default=1.0, show_default=True, help="printer scale correction")
def generate(prefix, start, count, output, media_type, template, skip, style, fmt, calibrate_x, calibrate_y, scale):
    """Write a sheet of Code 39 labels such as TAP001L9."""
    sheet_template = template_named(template)
    texts = label_texts(prefix, start, count, media_type.upper())
    written = write_sheet(output, texts, sheet_template, skip, style, fmt, Calibration(calibrate_x, calibrate_y, scale))
    pages = -(-(skip + count) // sheet_template.per_page)
    click.echo(f"{count} labels {texts[0]}..{texts[-1]} on {pages} page(s): {', '.join(map(str, written))}")


@labels.command("list")
@click.option("--prefix", required=True, help="the first characters of each label (A-Z, 0-9)")
@click.option("--start", type=int, default=1, show_default=True, help="number of the first label")
@click.option("--count", type=int, required=True, help="how many labels")
@click.option("--type", "media_type", default=DEFAULT_MEDIA_TYPE, show_default=True, help="media type suffix")
@output_format_option
def list_labels(prefix, start, count, media_type, output_format):
    """Print the labels generate would print, one a line (a label list for vtape add-cartridges)."""
    texts = label_texts(prefix, start, count, media_type.upper())
    emit(output_format, texts, lambda out: click.echo("\n".join(texts)))


@labels.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--template", help="also say which cell of the template each label is in")
@output_format_option
def check(file, template, output_format):
    """Render a PDF sheet and decode every barcode on it (needs pdftoppm and zbarimg)."""
    found = read_sheet(file, template_named(template) if template else None)
    rows = [{"page": f.page + 1, "cell": None if f.cell is None else f.cell + 1, "label": f.text} for f in found]
    emit(
        output_format,
        kebab_keys(rows),
        lambda out: print_table(
            ["page", "cell", "label"], [[str(r["page"]), str(r["cell"] or "-"), r["label"]] for r in rows]
        ),
    )
