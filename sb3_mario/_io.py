"""Atomic file writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = ".tmp-"  # in the name of every temporary file atomic_path writes: .<stem>.tmp-<random><suffix>


def sweep_temp_files(folder: str | os.PathLike[str]) -> tuple[int, int]:
    """Remove the temporary files that :func:`atomic_path` left in ``folder`` (not below it) when its process was
    killed mid-write (``kill -9``, power loss: ``finally`` never ran). Only call it on a folder no other process is
    writing to.

    :param folder: the folder to sweep
    :return: the number of files and of bytes removed
    """
    removed, size = 0, 0
    for path in Path(folder).glob(f".*{TEMP_MARK}*"):
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
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}{TEMP_MARK}", suffix=target.suffix, dir=target.parent)
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
