"""The project's atomic-write helper: whole files and folders or nothing, with open()'s mode."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from lnmdn_envs import atomic
from lnmdn_envs.atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    current_umask,
    replace_directory,
)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_text_replaces_with_open_mode_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "info.json"
    atomic_write_text(target, "first")
    atomic_write_bytes(target, b"second")
    assert target.read_text() == "second"
    assert _mode(target) == 0o666 & ~current_umask()  # not mkstemp's 0600
    assert sorted(p.name for p in target.parent.iterdir()) == ["info.json"]


def test_a_failing_writer_leaves_the_old_file(tmp_path):
    target = tmp_path / "data.npz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]


def test_temporary_keeps_the_suffix_so_numpy_writes_where_it_is_told(tmp_path):
    target = tmp_path / "packed.npz"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".packed.npz.")
        np.savez_compressed(tmp, x=np.arange(3))  # appends .npz to any other name
    with np.load(target) as z:
        np.testing.assert_array_equal(z["x"], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["packed.npz"]


def test_replace_directory_swaps_whole_folders(tmp_path):
    final = tmp_path / "dataset"
    for content in ("v1", "v2"):
        new = tmp_path / f".build-{content}"
        new.mkdir()
        (new / "data").write_text(content)
        replace_directory(new, final)
        assert (final / "data").read_text() == content
        assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
    new = tmp_path / ".build-v3"
    new.mkdir()
    aside = tmp_path / ".trash"
    replace_directory(new, final, aside=aside)
    assert not aside.exists() and not (final / "data").exists()


def test_replace_directory_puts_the_old_folder_back_when_the_move_fails(tmp_path, monkeypatch):
    final = tmp_path / "dataset"
    final.mkdir()
    (final / "data").write_text("old")
    new = tmp_path / ".build"
    new.mkdir()
    real_replace = os.replace
    calls = []

    def second_move_fails(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError("no space left")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", second_move_fails)
    with pytest.raises(OSError, match="no space left"):
        replace_directory(new, final)
    assert (final / "data").read_text() == "old"
    assert new.is_dir()
