"""Rotations: RELION ZYZ Euler angles, axis-angle (cryoSPARC), quaternions, 6D.

Inside the engine a rotation is a 3x3 matrix A in RELION's convention (``Euler_angles2matrix``):
A = Rz(psi) . Ry(tilt) . Rz(rot) with the passive elementary rotations
Rz(t) = [[cos t, sin t, 0], [-sin t, cos t, 0], [0, 0, 1]],
Ry(t) = [[cos t, 0, -sin t], [0, 1, 0], [sin t, 0, cos t]].
The image of a volume V under A is the projection along z of V(A^T r).

The numpy functions accept (..., k) arrays; ``*_torch`` variants are differentiable (they import
torch when called: this module loads without it).
"""
import math

import numpy as np


def euler_to_matrix(rot, tilt, psi):
    """RELION (rot, tilt, psi) in degrees -> (..., 3, 3) matrices."""
    a, b, g = (np.deg2rad(np.asarray(x, dtype=np.float64)) for x in (rot, tilt, psi))
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    m = np.empty(np.broadcast(a, b, g).shape + (3, 3))
    m[..., 0, 0] = cg * cc - sg * sa
    m[..., 0, 1] = cg * cs + sg * ca
    m[..., 0, 2] = -cg * sb
    m[..., 1, 0] = -sg * cc - cg * sa
    m[..., 1, 1] = -sg * cs + cg * ca
    m[..., 1, 2] = sg * sb
    m[..., 2, 0] = sc
    m[..., 2, 1] = ss
    m[..., 2, 2] = cb
    return m


def matrix_to_euler(m):
    """(..., 3, 3) RELION matrices -> (rot, tilt, psi) in degrees, tilt in [0, 180]."""
    m = np.asarray(m, dtype=np.float64)
    sb = np.hypot(m[..., 0, 2], m[..., 1, 2])
    tilt = np.arctan2(sb, m[..., 2, 2])
    regular = sb > 16 * np.finfo(np.float64).eps
    rot = np.where(regular, np.arctan2(m[..., 2, 1], m[..., 2, 0]), 0.0)
    psi = np.where(regular, np.arctan2(m[..., 1, 2], -m[..., 0, 2]),
                   # gimbal lock: only rot+psi (tilt=0) or psi-rot (tilt=180) is defined
                   np.where(m[..., 2, 2] > 0, np.arctan2(-m[..., 1, 0], m[..., 1, 1]),
                            np.arctan2(m[..., 1, 0], m[..., 1, 1])))
    return np.rad2deg(rot), np.rad2deg(tilt), np.rad2deg(psi)


def axis_angle_to_matrix(v):
    """Rodrigues: (..., 3) rotation vectors (axis * angle, radians) -> (..., 3, 3) active matrices."""
    v = np.asarray(v, dtype=np.float64)
    theta = np.linalg.norm(v, axis=-1)[..., None, None]
    k = np.zeros(v.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    k = k - np.swapaxes(k, -1, -2)
    small = theta < 1e-8
    t = np.where(small, 1.0, theta)
    a = np.where(small, 1.0, np.sin(t) / t)
    b = np.where(small, 0.5, (1 - np.cos(t)) / t ** 2)
    return np.eye(3) + a * k + b * (k @ k)


def matrix_to_axis_angle(m):
    """(..., 3, 3) active matrices -> (..., 3) rotation vectors, angle in [0, pi]."""
    q = matrix_to_quaternion(m)
    w = np.clip(q[..., 0], -1.0, 1.0)
    angle = 2 * np.arccos(np.abs(w))
    axis = q[..., 1:] * np.sign(np.where(w < 0, -1.0, 1.0))[..., None]
    n = np.linalg.norm(axis, axis=-1, keepdims=True)
    return np.where(n > 1e-12, axis / np.where(n > 1e-12, n, 1.0), 0.0) * angle[..., None]


def cryosparc_pose_to_matrix(pose):
    """cryoSPARC ``alignments3D/pose`` (axis-angle of the map->image rotation) -> RELION matrix.

    cryoSPARC's exponential map gives the transpose of RELION's matrix.
    """
    return np.swapaxes(axis_angle_to_matrix(pose), -1, -2)


def matrix_to_cryosparc_pose(m):
    return matrix_to_axis_angle(np.swapaxes(np.asarray(m), -1, -2))


def quaternion_to_matrix(q):
    """(..., 4) quaternions (w, x, y, z), any norm -> (..., 3, 3) active matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    m = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quaternion(m):
    """(..., 3, 3) -> (..., 4) unit quaternions (w, x, y, z) with w >= 0 (Shepperd's method)."""
    m = np.asarray(m, dtype=np.float64)
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cands = np.stack([
        np.stack([1 + tr, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        np.stack([m[..., 2, 1] - m[..., 1, 2], 1 + 2 * m[..., 0, 0] - tr, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        np.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 + 2 * m[..., 1, 1] - tr, m[..., 1, 2] + m[..., 2, 1]], -1),
        np.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 + 2 * m[..., 2, 2] - tr], -1),
    ], axis=-2)
    diag = np.stack([tr, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    best = np.take_along_axis(cands, np.argmax(diag, -1)[..., None, None], axis=-2)[..., 0, :]
    q = best / np.linalg.norm(best, axis=-1, keepdims=True)
    return q * np.where(q[..., :1] < 0, -1.0, 1.0)


def sixd_to_matrix(x):
    """(..., 6) continuous 6D representation (Zhou et al. 2019) -> (..., 3, 3); rows are b1, b2, b3."""
    x = np.asarray(x, dtype=np.float64)
    a1, a2 = x[..., :3], x[..., 3:]
    b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
    a2 = a2 - np.sum(b1 * a2, -1, keepdims=True) * b1
    b2 = a2 / np.linalg.norm(a2, axis=-1, keepdims=True)
    return np.stack([b1, b2, np.cross(b1, b2)], axis=-2)


def matrix_to_sixd(m):
    m = np.asarray(m, dtype=np.float64)
    return np.concatenate([m[..., 0, :], m[..., 1, :]], axis=-1)


def sixd_to_matrix_torch(x):
    """Differentiable 6D -> matrix for the networks (same convention as ``sixd_to_matrix``)."""
    import torch
    a1, a2 = x[..., :3], x[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-2)


def axis_angle_to_matrix_torch(v):
    """Differentiable Rodrigues formula (``axis_angle_to_matrix``): (B, 3) rotation vectors
    (radians) -> (B, 3, 3)."""
    import torch
    theta = torch.sqrt((v ** 2).sum(-1) + 1e-20)[:, None, None]
    zero = torch.zeros_like(v[:, 0])
    k = torch.stack([zero, -v[:, 2], v[:, 1], v[:, 2], zero, -v[:, 0], -v[:, 1], v[:, 0], zero],
                    dim=-1).reshape(-1, 3, 3)
    a = torch.sinc(theta / math.pi)                       # sin(t) / t
    b = 0.5 * torch.sinc(theta / (2 * math.pi)) ** 2      # (1 - cos t) / t^2
    return torch.eye(3, dtype=v.dtype, device=v.device) + a * k + b * (k @ k)


def clamp_norm_torch(v, bound):
    """Scale the rows of v (rotation vectors, shifts) down to a norm of at most ``bound``."""
    import torch
    norm = v.norm(dim=-1, keepdim=True)
    return v * torch.clamp(bound / norm.clamp_min(1e-12), max=1.0)


def quaternion_multiply_torch(a, b):
    """Hamilton product of (..., 4) quaternions (w, x, y, z)."""
    import torch
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz,
                        aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx,
                        aw * bz + ax * by - ay * bx + az * bw], dim=-1)


def quaternion_rotate_torch(q, x):
    """Rotate points x (R, 3) by unit quaternions q (B, R, 4) -> (B, R, 3) (the active rotation
    of ``quaternion_to_matrix``)."""
    import torch
    w, u = q[..., :1], q[..., 1:]
    c = torch.cross(u, x.expand_as(u), dim=-1)
    return x + 2 * w * c + 2 * torch.cross(u, c, dim=-1)


def random_rotations(n, rng):
    """n rotations uniform on SO(3) (uniform random unit quaternions)."""
    q = rng.normal(size=(n, 4))
    return quaternion_to_matrix(q)


def rotation_angle_deg(a, b):
    """Geodesic angle in degrees between rotation matrices a and b (broadcasting)."""
    r = np.swapaxes(np.asarray(a), -1, -2) @ np.asarray(b)
    c = (np.trace(r, axis1=-2, axis2=-1) - 1) / 2
    return np.rad2deg(np.arccos(np.clip(c, -1, 1)))
