#!/usr/bin/env python
"""The longest functions of a package (lines from ``def`` to the last line, decorators and
docstring included), to keep them short; exit status 1 if any is over ``--max``.

    python tools/function_lengths.py diarize --top 5 --max 60
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

from diarize.utils import DiarizeError, run_tool


def lengths(root: Path) -> list[tuple[int, str]]:
    """(lines, "path:qualified name") of every function and method under ``root``."""
    rows = []
    for path in sorted(root.rglob("*.py")):
        rows += _walk(ast.parse(path.read_text()), f"{path}:")
    return sorted(rows, reverse=True)


def _walk(node: ast.AST, prefix: str) -> list[tuple[int, str]]:
    rows = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                rows.append((child.end_lineno - first + 1, name))
            rows += _walk(child, f"{name}.")
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path, nargs="?", default=Path("diarize"))
    p.add_argument("--top", type=int, default=5, help="how many to list")
    p.add_argument("--max", type=int, default=60, help="longest allowed")
    args = p.parse_args()
    if not args.root.is_dir():
        raise DiarizeError(f"{args.root}: no such directory")
    rows = lengths(args.root)
    for n, name in rows[: args.top]:
        print(f"{n:4d}  {name}")
    over = [name for n, name in rows if n > args.max]
    print(
        f"{len(over)} function(s) over {args.max} lines" + (f": {', '.join(over)}" if over else "")
    )
    return 1 if over else 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
