"""Videos of closed-loop episodes: frames from the envs' recorders, written as gif or mp4.

The vector env's ``FrameRecorder`` wrappers (:mod:`lnmdn_envs.wrappers`) keep the frames of the
episodes being filmed; :func:`collect_frames` gathers them per episode during the rollout and
:func:`write_video` writes one episode's frames to a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["collect_frames", "write_video"]


def collect_frames(
    env: Any, slot: list[int], frames: dict[int, list[np.ndarray]], n_videos: int
) -> None:
    """Append each filmed env's new frames to its episode's list in ``frames``.

    ``slot[i]`` is the episode env ``i`` runs (-1: frozen); only episodes below ``n_videos`` are
    kept. The envs' recorders are emptied (``pop_frames``).
    """
    popped = env.call("pop_frames")
    for i, fr in enumerate(popped):
        ep = slot[i]
        if 0 <= ep < n_videos and fr:
            frames.setdefault(ep, []).extend(fr)


def write_video(path: Path, frames: list[Any], fps: int) -> None:
    """Write ``frames`` (RGB arrays) to ``path``: a looping gif, or an mp4 (imageio-ffmpeg)."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as err:
            raise ImportError(
                "mp4 videos need imageio-ffmpeg: pip install imageio-ffmpeg (or use gif)"
            ) from err
        imageio.mimsave(path, frames, fps=fps)
    else:
        imageio.mimsave(path, frames, duration=1000 / fps, loop=0)
