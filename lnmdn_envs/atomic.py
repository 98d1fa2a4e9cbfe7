"""Atomic file output for the whole project: a reader sees the old file or the new one, never half.

Every file lnmdn writes to be read later goes through here: policy checkpoints and run files
(``lnmdn_agents``), bench results, the packed ``.npz`` datasets and the Minari dataset folders
(``lnmdn_datasets``). It lives in ``lnmdn_envs``, the lowest layer, because both packages above
may import it (``lnmdn_envs`` <- ``lnmdn_datasets`` <- ``lnmdn_agents``); it needs the standard
library only.

The recipe is the usual one: write a temporary file beside the target (same folder, hence the
same file system), flush it to disk, give it the mode a plain ``open`` would have given it (the
temporary file's own mode is 0600), then ``os.replace`` it onto the target; on any error the
temporary file is removed and the target is untouched. Temporary names are hidden
(``.<name>.<random>.tmp<suffix>``) so that globs over a folder do not see them.

::

    atomic_write_text(run_dir / "eval_info.json", text)        # bytes or text in hand
    with atomic_path(out / "data.npz") as tmp:                 # a library that writes a path
        np.savez_compressed(tmp, **arrays)
    replace_directory(build_dir, final_dir, aside=trash_dir)   # a finished folder into place
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "current_umask",
    "replace_directory",
]

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask (read without changing it for other threads)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _file_mode() -> int:
    """Mode of a new file as ``open`` would make it (0644 under the usual umask 022)."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block succeeds.

    For writers that take a file name (``np.savez_compressed``, safetensors' ``save_file``). The
    temporary name ends with the target's suffix, so writers that append a missing one (numpy's
    ``.npz``) write exactly where they are told. The parent folder is created.

    Args:
        path: the file to (re)place.

    Yields:
        The temporary path; the block writes the whole file there.

    Raises:
        Whatever the block raises; then ``path`` is unchanged and the temporary file is gone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:  # the writer may not have synced: do it before the rename
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`), creating its folder.

    The file gets the mode a plain ``open`` would give it (world-readable under the usual umask),
    not the 0600 of the temporary file.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def replace_directory(
    new: str | Path, final: str | Path, *, aside: str | Path | None = None
) -> None:
    """Move the finished folder ``new`` onto ``final``, replacing the folder there if any.

    ``os.replace`` cannot replace a non-empty folder, so an existing ``final`` is first renamed to
    ``aside`` and deleted once ``new`` is in place; if that second rename fails, the old folder is
    put back. Readers see the old folder or the new one, never a mixture (between the two renames
    ``final`` is briefly absent). ``new`` must be on the same file system as ``final``.

    Args:
        new: the complete folder.
        final: where it goes (its parent must exist).
        aside: where the old folder waits to be deleted; by default a hidden name beside
            ``final``. Callers that clean up after crashed processes put it where their clean-up
            looks.
    """
    new, final = Path(new), Path(final)
    if not final.exists():
        os.replace(new, final)
        return
    if aside is None:
        aside = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.old")
    old = Path(aside)
    os.replace(final, old)
    try:
        os.replace(new, final)
    except BaseException:
        os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)
