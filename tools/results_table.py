#!/usr/bin/env python
"""A Markdown results table from the JSON reports of ``diarize score --json`` /
``diarize evaluate`` (``der.json``), laid out ``.../<system>/<set>/<condition>.json``: one row
per report with DER, JER, missed, false alarm and confusion (% of scored speaker time),
ready to paste into the README. The recipes under recipes/{ami,callhome,dihard3,voxconverse}
write their scores that way.

    python tools/results_table.py exp/callhome/scores/*/*/*.json -o exp/callhome/results.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from diarize.utils import DiarizeError, atomic_write, run_tool

HEADER = (
    "| system | set | condition | collar | overlap | DER % | JER % | missed % | false alarm % "
    "| confusion % | recordings |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def row(path: Path) -> str:
    """The table row of one report."""
    try:
        report = json.loads(path.read_text())
        total, scored = report["total"], report["total"]["scored"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DiarizeError(f"{path}: not a diarize score report ({e.__class__.__name__})") from None
    pct = lambda key: 100 * total[key] / scored if scored > 0 else 0.0  # noqa: E731
    condition = report.get("condition") or path.stem
    overlap = "skipped" if report["skip_overlap"] else "scored"
    return (
        f"| {path.parent.parent.name} | {path.parent.name} | {condition} | {report['collar']:g} s "
        f"| {overlap} | {total['der']:.2f} | {total.get('jer', float('nan')):.2f} "
        f"| {pct('missed'):.2f} | {pct('false_alarm'):.2f} | {pct('confusion'):.2f} "
        f"| {len(report['files'])} |"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+", type=Path, help=".../<system>/<set>/<condition>.json")
    p.add_argument("-o", "--output", type=Path, help="also write the table to this file")
    args = p.parse_args()
    table = "\n".join([HEADER, *(row(path) for path in sorted(args.reports))]) + "\n"
    print(table, end="")
    if args.output:
        with atomic_write(args.output) as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
