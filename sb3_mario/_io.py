"""Atomic file writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = ".tmp-"  # in the name of every temporary file atomic_path writes: .<stem>.tmp-<pid>-<random><suffix>
_WRITER = re.compile(re.escape(TEMP_MARK) + r"(\d+)-")  # the writer's process id (names before 2026-12-07 have none)


def _writer_alive(name: str) -> bool:
    """Whether the process that writes temporary file ``name`` still runs (``False`` if the name does not say)."""
    match = _WRITER.search(name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process: alive; not a process id: not ours
        return True
    return True


def sweep_temp_files(folder: str | os.PathLike[str], owned: bool = True) -> tuple[int, int]:
    """Remove the temporary files that :func:`atomic_path` left in ``folder`` (not below it) when its process was
    killed mid-write (``kill -9``, power loss: ``finally`` never ran).

    :param folder: the folder to sweep
    :param owned: this process owns the folder (no other process writes there): remove every temporary file;
        ``False``: only those whose writer (the process id in the name) is gone, so a live run's save is left alone
    :return: the number of files and of bytes removed
    """
    removed, size = 0, 0
    for path in Path(folder).glob(f".*{TEMP_MARK}*"):
        if not owned and _writer_alive(path.name):
            continue
        if path.is_file():
            with contextlib.suppress(OSError):
                n_bytes = path.stat().st_size
                path.unlink()
                removed, size = removed + 1, size + n_bytes
    return removed, size


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; on success rename it to ``path`` (atomic on POSIX).

    On error the temporary file is removed and any existing ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # keep the suffix: some writers (OpenCV's VideoWriter, np.savez) choose the format by it
    # the writer's process id in the name: a later run may sweep what a killed writer left (sweep_temp_files)
    prefix = f".{target.stem}{TEMP_MARK}{os.getpid()}-"
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)  # reading the umask sets it: set it back
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions open() would
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def describe_write_error(path: str | os.PathLike[str], exc: OSError, needed_bytes: int = 0) -> str:
    """One line for a failed write: the file, the reason, and (if known) the space it needed and what was free."""
    target = Path(path)
    parts = [f"cannot write {target}: {exc.strerror or exc}"]
    if needed_bytes > 0:
        parts.append(f"needs about {needed_bytes / 1e6:.0f} MB")
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(target.parent if target.parent.exists() else ".").free
        parts.append(f"{free / 1e6:.0f} MB free")
    return ", ".join(parts)
