#!/usr/bin/env python3
"""Puts the tables of summarise.py between the markers of docs/accuracy.md.

usage: python3 scripts/study/fill_doc.py RESULTS_DIR [docs/accuracy.md]
"""
import subprocess
import sys
from pathlib import Path

BEGIN, END = "<!-- tables: begin (scripts/study/fill_doc.py) -->", "<!-- tables: end -->"


def main():
    results = sys.argv[1]
    doc = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parents[2] / "docs/accuracy.md")
    tables = subprocess.run([sys.executable, str(Path(__file__).with_name("summarise.py")), results],
                            check=True, capture_output=True, text=True).stdout.strip()
    text = doc.read_text()
    if "@TABLES@" in text:
        text = text.replace("@TABLES@", f"{BEGIN}\n{END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n\n{tables}\n\n{END}{tail}")


if __name__ == "__main__":
    main()
