"""Soft masks: a sphere, or a thresholded and dilated map, with a raised-cosine edge.

Grid convention as everywhere in the engine: ``mask[z, y, x]``, voxel ``(i, j, k)`` at
``((i - D//2), (j - D//2), (k - D//2)) * apix`` Å from the box centre. Values are 1 inside, fall as
``(1 + cos(pi t)) / 2`` over the soft edge (``t`` from 0 to 1 across ``soft_A`` Å) and are 0 beyond.
"""
import numpy as np


def _soft_edge(distance_A, soft_A):
    """1 where ``distance_A`` <= 0, a raised cosine to 0 at ``soft_A``, 0 beyond."""
    d = np.asarray(distance_A, dtype=np.float64)
    if soft_A <= 0:
        return (d <= 0).astype(np.float32)
    t = np.clip(d / soft_A, 0.0, 1.0)
    return (0.5 * (1 + np.cos(np.pi * t))).astype(np.float32)


def sphere_mask(box, apix, center_A=(0.0, 0.0, 0.0), radius_A=None, soft_A=0.0):
    """(box, box, box) float32 mask of a sphere of ``radius_A`` Å centred ``center_A`` = (x, y, z)
    Å from the box centre, with a soft edge ``soft_A`` Å wide outside the radius."""
    box = int(box)
    if box < 2:
        raise ValueError("--box must be at least 2 (got %d)" % box)
    if not apix or apix <= 0:
        raise ValueError("--apix must be positive (got %s)" % apix)
    if radius_A is None or radius_A <= 0:
        raise ValueError("--radius must be positive (got %s)" % radius_A)
    if soft_A < 0:
        raise ValueError("--soft must be >= 0 (got %s)" % soft_A)
    center_A = np.asarray(center_A, dtype=np.float64).reshape(-1)
    if center_A.shape != (3,):
        raise ValueError("--center needs three values x,y,z in Å (got %s)" % list(center_A))
    r = (np.arange(box) - box // 2) * float(apix)
    z, y, x = np.meshgrid(r, r, r, indexing="ij")
    dist = np.sqrt((x - center_A[0]) ** 2 + (y - center_A[1]) ** 2 + (z - center_A[2]) ** 2)
    return _soft_edge(dist - radius_A, soft_A)


def threshold_mask(vol, threshold, dilate_A=0.0, soft_A=0.0, apix=1.0):
    """Mask of the voxels of ``vol`` above ``threshold``, grown by ``dilate_A`` Å (Euclidean
    distance) and given a soft edge ``soft_A`` Å wide beyond that."""
    from scipy.ndimage import distance_transform_edt
    vol = np.asarray(vol, dtype=np.float32)
    if vol.ndim != 3:
        raise ValueError("the map must be 3D (got shape %s)" % (vol.shape,))
    if not apix or apix <= 0:
        raise ValueError("the pixel size must be positive (got %s)" % apix)
    if dilate_A < 0 or soft_A < 0:
        raise ValueError("--dilate and --soft must be >= 0 (got %s, %s)" % (dilate_A, soft_A))
    core = vol > threshold
    if not core.any():
        raise ValueError("no voxel is above the threshold %g (map range %g to %g)"
                         % (threshold, float(vol.min()), float(vol.max())))
    dist = distance_transform_edt(~core, sampling=float(apix))     # Å to the nearest core voxel
    return _soft_edge(dist - dilate_A, soft_A)
