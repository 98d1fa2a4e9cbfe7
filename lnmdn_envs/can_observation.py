"""robomimic's 23-D low-dim observation of Can, computed from the MuJoCo data alone.

The layout (robomimic's low-dim keys in robomimic's order; :mod:`lnmdn_envs.can` draws it) is
named by :data:`CAN_OBS_SLICES`. :func:`can_observation` reads body and site poses from the
simulator's ``MjData``, so the observation is a function of the simulator state: the same after a
step, a reset or a ``reset_to_state`` into the same state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CAN_OBS_DIM", "CAN_OBS_KEYS", "CAN_OBS_SLICES", "can_observation"]

CAN_OBS_DIM = 23

#: robomimic's low-dim observation keys for Can, in robomimic's (and Diffusion Policy's) order.
CAN_OBS_KEYS: tuple[str, ...] = (
    "object",
    "robot0_eef_pos",
    "robot0_eef_quat",
    "robot0_gripper_qpos",
)

#: Named ranges of the 23-D observation: the four robomimic keys, then the parts of ``object``.
CAN_OBS_SLICES: dict[str, slice] = {
    "object": slice(0, 14),
    "robot0_eef_pos": slice(14, 17),
    "robot0_eef_quat": slice(17, 21),
    "robot0_gripper_qpos": slice(21, 23),
    "Can_pos": slice(0, 3),
    "Can_quat": slice(3, 7),
    "Can_to_robot0_eef_pos": slice(7, 10),
    "Can_to_robot0_eef_quat": slice(10, 14),
}


def _quat_xyzw(q_wxyz: np.ndarray) -> np.ndarray:
    return np.array([q_wxyz[1], q_wxyz[2], q_wxyz[3], q_wxyz[0]])


def _quat_mul_wxyz(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def _rotate_inv(q_wxyz: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate ``v`` by the inverse of the unit quaternion ``q`` (world vector into the frame)."""
    w, x, y, z = q_wxyz
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    return rot.T @ v


def can_observation(
    data: Any, can_body: int, eef_site: int, eef_body: int, gripper_qpos_idx: np.ndarray
) -> np.ndarray:
    """The ``(23,)`` float32 observation from MuJoCo's ``MjData``.

    Args:
        data: the simulator's ``MjData`` (body and site poses up to date).
        can_body: body id of the can.
        eef_site: site id of the end effector (its position).
        eef_body: body id of the hand (its orientation, robomimic's ``eef_quat``).
        gripper_qpos_idx: ``qpos`` indices of the finger joints.
    """
    can_pos = data.xpos[can_body]
    can_q = data.xquat[can_body]  # wxyz
    eef_pos = data.site_xpos[eef_site]
    eef_q = data.xquat[eef_body]  # wxyz, the hand body (robomimic's eef_quat)
    eef_q_inv = eef_q * np.array([1.0, -1.0, -1.0, -1.0])
    rel_pos = _rotate_inv(eef_q, can_pos - eef_pos)
    rel_q = _quat_mul_wxyz(eef_q_inv, can_q)
    if rel_q[0] < 0:  # robosuite's mat2quat returns w >= 0
        rel_q = -rel_q
    obs = np.concatenate(
        [
            can_pos,
            _quat_xyzw(can_q),
            rel_pos,
            _quat_xyzw(rel_q),
            eef_pos,
            _quat_xyzw(eef_q),
            data.qpos[gripper_qpos_idx],
        ]
    )
    return obs.astype(np.float32)
