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


@pytest.fixture
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hugging Face Hub offline mode, as a user sets it (``HF_HUB_OFFLINE=1``).

    huggingface_hub reads the variable once, when its ``constants`` module is imported; once an
    earlier test has imported it, the variable alone no longer applies and each download attempt
    waits about 23 s for name resolution to fail. So the constant is set too.
    """
    import importlib.util

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if importlib.util.find_spec("huggingface_hub") is not None:
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
