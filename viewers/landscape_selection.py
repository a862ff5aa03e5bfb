"""Selections on the landscape (no Qt): the particles inside a rectangle or a polygon, a new
selection combined with the current one, and the particle nearest to a point of the view."""
import numpy as np

__all__ = ["in_rect", "in_polygon", "combine", "nearest"]


def in_rect(x, y, x0, y0, x1, y1):
    """Mask of the points ``(x, y)`` inside the rectangle with corners (x0, y0) and (x1, y1)."""
    xa, xb = sorted((float(x0), float(x1)))
    ya, yb = sorted((float(y0), float(y1)))
    return (x >= xa) & (x <= xb) & (y >= ya) & (y <= yb)


def in_polygon(x, y, points):
    """Mask of the points ``(x, y)`` inside a polygon ``[(x, y), ...]``."""
    from matplotlib.path import Path
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        raise ValueError("a polygon needs at least 3 (x, y) points")
    xy = np.column_stack([x, y])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    inside_box = np.all((xy >= lo) & (xy <= hi), axis=1)
    mask = np.zeros(len(xy), dtype=bool)
    cand = np.flatnonzero(inside_box)
    if len(cand):
        mask[cand] = Path(pts).contains_points(xy[cand])
    return mask


def combine(selected, mask, how):
    """The selection ``mask`` replaces the current one (``how="replace"``), is added to it
    (``"add"``) or removed from it (``"remove"``); returns the new selection."""
    if how == "replace":
        return np.asarray(mask, dtype=bool).copy()
    if how == "add":
        return selected | mask
    if how == "remove":
        return selected & ~mask
    raise ValueError("how must be replace, add or remove")


def nearest(px, py, x, y, view_range):
    """Index of the point ``(px, py)`` nearest to (x, y), measured in proportions of the view
    ``((x min, x max), (y min, y max))``."""
    (xa, xb), (ya, yb) = view_range
    sx, sy = (xb - xa) or 1.0, (yb - ya) or 1.0
    d = ((px - x) / sx) ** 2 + ((py - y) / sy) ** 2
    return int(np.argmin(d))
