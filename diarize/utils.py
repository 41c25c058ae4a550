"""Small shared helpers: user-facing errors, atomic writes, seeding."""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np


class DiarizeError(Exception):
    """An error the user caused (bad file, bad option): the CLI prints it as one line."""


class DiarizeWarning(UserWarning):
    """Something the user should know (a request that could not be met in full): raised
    with ``warnings.warn``; the CLI prints it as one line, ``diarize <cmd>: warning: ...``."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only on success.

    A crash or an exception inside the block leaves no partial ``path`` behind. A process
    killed outright (SIGKILL, power loss) can leave its hidden temporary; the next write
    into the same directory removes it (:func:`_remove_stale_temporaries`). A target that
    cannot be created (no permission, a directory in the way) is a :class:`DiarizeError`.
    """
    path = Path(path)
    fd, tmp = _temporary_beside(path, ".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_path(path: str | os.PathLike) -> contextlib.AbstractContextManager[Path]:
    """Like :func:`atomic_write` but yields a temporary *path* for writers that want one
    (``soundfile.write``, ``torch.save``); it ends in ``path``'s own suffix."""
    return _atomic_path(Path(path))


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    fd, tmp = _temporary_beside(path, ".tmp" + path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        _replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_writable(path: str | os.PathLike, directory: bool = False) -> None:
    """Fail now, before any work, unless file ``path`` (with ``directory``: files inside the
    directory ``path``) can be written: a :class:`DiarizeError` when a directory stands where
    the file should be (or a file where the directory should), or the nearest existing
    folder is not one or cannot be written (probed with a file made and removed at once;
    nothing else is created)."""
    path = Path(path)
    if _exists(path) and path.is_dir() != directory:
        raise DiarizeError(
            f"{path}: exists and is not a directory" if directory else f"{path}: is a directory"
        )
    folder = path if directory else path.parent
    while not _exists(folder):
        folder = folder.parent
    if not folder.is_dir():
        raise DiarizeError(f"{path}: cannot write there ({folder} is not a directory)")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".diarize-probe.")
    except OSError as e:
        raise DiarizeError(f"{path}: cannot write there ({_os_reason(e)})") from None
    os.close(fd)
    os.unlink(probe)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError as e:  # e.g. a parent without search permission
        raise DiarizeError(f"{path}: cannot access ({_os_reason(e)})") from None


def _temporary_beside(path: Path, suffix: str) -> tuple[int, str]:
    """``mkstemp`` in ``path``'s folder (created if missing): a hidden
    ``.NAME.XXXXXXXX.PID-TAG<suffix>`` with the process id and :func:`_process_tag`, so a
    later process can tell a temporary whose writer died. Mode as ``open()`` would give."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DiarizeError(
            f"{path}: cannot write (a file stands in the way of its folder)"
        ) from None
    except OSError as e:
        raise DiarizeError(f"{path}: cannot write ({_os_reason(e)})") from None
    try:
        _remove_stale_temporaries(path.parent)
        fd, tmp = tempfile.mkstemp(
            dir=path.parent,
            prefix=f".{path.name}.",
            suffix=f".{os.getpid()}-{_process_tag()}{suffix}",
        )
    except OSError as e:
        raise DiarizeError(f"{path}: cannot write ({_os_reason(e)})") from None
    os.chmod(tmp, _default_mode())
    return fd, tmp


def _replace(tmp: str, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError as e:  # e.g. a directory named like the target
        raise DiarizeError(f"{path}: cannot write ({_os_reason(e)})") from None


# .NAME.XXXXXXXX.PID-TAG.tmp[.suffix]: the temporaries of _temporary_beside
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.(\d+)-([0-9a-f]{8})\.tmp(\.[^.]*)?$")
_SCANNED: set[str] = set()  # folders already cleaned by this process
_SCAN_LOCK = threading.Lock()


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporaries in ``folder`` whose writer, a process of this machine (same
    :func:`_process_tag`), no longer runs: what a killed process left. Once per folder and
    process, so writing many files into one folder stays linear."""
    key = os.path.abspath(folder)
    with _SCAN_LOCK:
        if key in _SCANNED:
            return
        _SCANNED.add(key)
    tag = _process_tag()
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(".")]
    except OSError:
        return  # unlistable (write-only) folder: nothing to clean
    for name in names:
        m = _TEMPORARY.match(name)
        if m and m.group(2) == tag and not _alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(folder / name)


def _process_tag() -> str:
    """8 hex digits naming this machine and pid namespace (hostname + the namespace's
    inode): process ids are only comparable between processes with the same tag."""
    ns = ""
    with contextlib.suppress(OSError):
        ns = str(os.stat("/proc/self/ns/pid").st_ino)
    return f"{zlib.crc32(f'{socket.gethostname()}/{ns}'.encode()):08x}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or no valid pid: leave the file alone)
    return True


def _os_reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


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
