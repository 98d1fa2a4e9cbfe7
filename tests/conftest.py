"""Shared test fixtures."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(autouse=True)
def _isolated_minari_root(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
):
    """Point Minari at a temporary folder so no test touches a user's datasets."""
    root = tmp_path_factory.mktemp("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    yield root


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: tiny models are fastest so, and the cores are shared.

    Modules of tiny-model tests use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch  # here, not at the top: the env and dataset tests need no torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
