"""End-effector pose actions: per arm x, y, z, qw, qx, qy, qz, gripper (RoboTwin's ``ee`` action).

A quaternion and its negative are the same rotation, so recorded poses may flip sign between
steps; a model regressing them would have to learn jumps that mean nothing. Converted episodes
therefore hold each arm's quaternions continuous (:func:`continuous_quaternions`: unit length,
the first with w >= 0, each next one on the side of the previous).

Poses may also be stored relative to the episode's first pose (as the authors' RoboTwin training
does): position p - p0 in the world frame and rotation q0^-1 q, so a pose of the first frame is
(0, 0, 0, 1, 0, 0, 0). :func:`to_first_pose_frame` and :func:`from_first_pose_frame` convert
between the two; evaluation adds the first pose back before acting.
"""

from __future__ import annotations

import numpy as np

ARM_WIDTH = 8  # x, y, z, qw, qx, qy, qz, gripper
POSITION, QUATERNION, GRIPPER = slice(0, 3), slice(3, 7), 7


def ee_names(arms: tuple[str, ...] = ("left", "right")) -> tuple[str, ...]:
    """Channel names of an ee action for ``arms`` (left first, as RoboTwin takes them)."""
    return tuple(f"{arm}_{part}" for arm in arms for part in ("x", "y", "z", "qw", "qx", "qy", "qz", "gripper"))


def quaternion_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The Hamilton product a b of quaternions (..., 4) in w, x, y, z order."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quaternion_conjugate(q: np.ndarray) -> np.ndarray:
    """The inverse of unit quaternions (..., 4) in w, x, y, z order."""
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def continuous_quaternions(q: np.ndarray) -> np.ndarray:
    """(T, 4) unit quaternions with the first's w >= 0 and no sign flip between consecutive steps."""
    q = np.asarray(q, dtype=np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if (norm < 1e-8).any():
        raise ValueError("continuous_quaternions: a quaternion has zero length")
    q = q / norm
    out = np.empty_like(q)
    previous = np.array([1.0, 0.0, 0.0, 0.0])
    for t, value in enumerate(q):
        out[t] = -value if np.dot(value, previous) < 0 else value
        previous = out[t]
    return out


def _per_arm(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.shape[-1] % ARM_WIDTH:
        raise ValueError(f"ee vectors have {vectors.shape[-1]} channels, not a multiple of {ARM_WIDTH} "
                         "(x, y, z, qw, qx, qy, qz, gripper per arm)")
    return vectors.reshape(*vectors.shape[:-1], -1, ARM_WIDTH)


def continuous_ee(vectors: np.ndarray) -> np.ndarray:
    """(T, 8 arms) ee vectors with every arm's quaternions made continuous."""
    arms = _per_arm(vectors).copy()
    for a in range(arms.shape[1]):
        arms[:, a, QUATERNION] = continuous_quaternions(arms[:, a, QUATERNION])
    return arms.reshape(len(arms), -1)


def to_first_pose_frame(vectors: np.ndarray, first: np.ndarray) -> np.ndarray:
    """(..., 8 arms) ee vectors relative to ``first`` (8 arms,): p - p0, q0^-1 q; grippers unchanged."""
    arms, origin = _per_arm(vectors).copy(), _per_arm(first)
    arms[..., POSITION] -= origin[..., POSITION]
    arms[..., QUATERNION] = quaternion_multiply(quaternion_conjugate(_unit(origin[..., QUATERNION])),
                                                arms[..., QUATERNION])
    return arms.reshape(np.shape(vectors))


def from_first_pose_frame(vectors: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_first_pose_frame`: world-frame ee vectors."""
    arms, origin = _per_arm(vectors).copy(), _per_arm(first)
    arms[..., POSITION] += origin[..., POSITION]
    arms[..., QUATERNION] = quaternion_multiply(_unit(origin[..., QUATERNION]), arms[..., QUATERNION])
    return arms.reshape(np.shape(vectors))


def _unit(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q, axis=-1, keepdims=True)
