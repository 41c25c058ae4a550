"""Small shared helpers: user-facing errors, atomic writes, seeding."""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np


class DiarizeError(Exception):
    """An error the user caused (bad file, bad option): the CLI prints it as one line."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only on success.

    A crash or an exception inside the block leaves no partial ``path`` behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, _default_mode())
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_path(path: str | os.PathLike) -> contextlib.AbstractContextManager[Path]:
    """Like :func:`atomic_write` but yields a temporary *path* for writers that want one
    (``soundfile.write``, ``torch.save``)."""
    return _atomic_path(Path(path))


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    os.chmod(tmp, _default_mode())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines of a UTF-8 text file; a missing
    or unreadable file is a :class:`DiarizeError` naming it."""
    if not path.exists():
        raise DiarizeError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DiarizeError(f"{path}: cannot read ({e.__class__.__name__})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield lineno, line.strip()


def _default_mode() -> int:
    """The mode ``open()`` would give a new file (0o666 less the umask); mkstemp uses 0o600.
    Reading the umask means setting it, so it is not done from worker threads' hot path
    more than needed; the value is the process's at the time of the call."""
    with _UMASK_LOCK:
        umask = os.umask(0o077)
        os.umask(umask)
    return 0o666 & ~umask


_UMASK_LOCK = threading.Lock()


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_tool(main: Callable[[], int], name: str) -> None:
    """Exit with ``main()``'s status; a DiarizeError (a user's mistake) becomes one line on
    stderr, ``name: error: ...``, and status 1, without a traceback. For the scripts in tools/."""
    try:
        raise SystemExit(main())
    except DiarizeError as e:
        raise SystemExit(f"{name}: error: {e}") from None
