"""Colours of the viewers (no Qt): the categorical palette, per-point colours of the landscape
(:class:`Coloring`: categories or a continuous colour map) and one colour per cryoSPHERE segment."""
import numpy as np

__all__ = ["PALETTE", "Coloring", "is_categorical", "segment_colors", "hex_color"]

MAX_CATEGORIES = 20
CONTINUOUS_LEVELS = 64
SELECTION_RGB = (230, 50, 40)
PICK_RGB = (255, 215, 0)
BASE_RGB = (40, 90, 160)
PALETTE = [  # categorical colours (Okabe-Ito and Tableau, distinguishable, colour-blind aware)
    (0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0),
    (240, 228, 66), (100, 100, 100), (148, 103, 189), (140, 86, 75), (23, 190, 207),
    (188, 189, 34), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
    (227, 119, 194), (127, 127, 127), (174, 199, 232), (255, 187, 120),
]


def is_categorical(values):
    """True for values shown as categories: text, or whole numbers with at most MAX_CATEGORIES levels."""
    values = np.asarray(values)
    if values.dtype.kind in "biuUSO":
        return len(np.unique(values)) <= MAX_CATEGORIES or values.dtype.kind in "USO"
    finite = values[np.isfinite(values)]
    return finite.size > 0 and np.all(finite == np.round(finite)) and \
        len(np.unique(finite)) <= MAX_CATEGORIES


class Coloring:
    """Per-point RGB colours plus what the legend / colour bar needs."""

    def __init__(self, values, cmap):
        self.categories = None
        self.range = None
        if values is None:
            self.rgb = None
            return
        values = np.asarray(values)
        n = len(values)
        if is_categorical(values):
            cats, codes = np.unique(values, return_inverse=True)
            colors = np.array([PALETTE[i % len(PALETTE)] for i in range(len(cats))], dtype=np.uint8)
            self.rgb = colors[codes]
            self.categories = [(c, tuple(int(v) for v in colors[i]), int((codes == i).sum()))
                               for i, c in enumerate(cats)]
        else:
            v = values.astype(np.float64)
            finite = np.isfinite(v)
            lo, hi = (np.percentile(v[finite], [1, 99]) if finite.any() else (0.0, 1.0))
            if hi <= lo:
                hi = lo + 1.0
            self.range = (float(lo), float(hi))
            lut = np.vstack([cmap.getLookupTable(0.0, 1.0, CONTINUOUS_LEVELS)[:, :3],
                             [[160, 160, 160]]]).astype(np.uint8)
            idx = np.full(n, CONTINUOUS_LEVELS, dtype=np.int64)
            idx[finite] = np.clip(((v[finite] - lo) / (hi - lo) * CONTINUOUS_LEVELS).astype(np.int64),
                                  0, CONTINUOUS_LEVELS - 1)
            self.rgb = lut[idx]


def hex_color(rgb):
    """(r, g, b) -> "#rrggbb"."""
    return "#%02x%02x%02x" % tuple(int(c) for c in rgb)


def segment_colors(segment_ids):
    """``{segment: (r, g, b)}``: the categorical palette in segment order."""
    return {int(k): PALETTE[i % len(PALETTE)] for i, k in enumerate(segment_ids)}
