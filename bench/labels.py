"""Label sheet generation: seconds to lay out and write 1,000 labels as one PDF (goal: under 5 s).

.venv/bin/python bench/labels.py [--count 1000] [--template avery5160]
"""

import argparse
import tempfile
import time
from pathlib import Path

from tapefs.labels.label_set import label_texts
from tapefs.labels.sheet import write_sheet
from tapefs.labels.templates import DEFAULT_TEMPLATE, template_named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--template", default=DEFAULT_TEMPLATE)
    args = parser.parse_args()
    template = template_named(args.template)
    texts = label_texts("BN", 0, args.count)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        (sheet,) = write_sheet(Path(scratch) / "labels.pdf", texts, template)
        seconds = time.perf_counter() - started
        size = sheet.stat().st_size
    pages = -(-args.count // template.per_page)
    print(f"{args.count} labels, {pages} pages ({template.name}): {seconds:.2f} s, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
