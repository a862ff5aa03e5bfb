"""Statistics of the segments window (no Qt): residue ranges as text, Spearman rank correlation,
equal-count binned quantiles and principal components."""
import numpy as np

from flexplugin.engine.analysis.pca import pca

__all__ = ["residue_ranges", "ranks", "rank_correlation", "spearman", "binned_quantiles",
           "principal_components"]


def residue_ranges(numbers, chains=None, limit=None):
    """Runs of consecutive residue numbers as text: ``"1\u2013120, 200\u2013210"`` (``limit``: at most
    that many runs, then "(+n more)")."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if not len(numbers):
        return "\u2013"
    chains = np.asarray(chains) if chains is not None else np.full(len(numbers), "")
    breaks = np.flatnonzero((np.diff(numbers) != 1) | (chains[1:] != chains[:-1])) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks - 1, [len(numbers) - 1]])
    multi = len(np.unique(chains)) > 1
    parts = []
    for a, b in zip(starts, ends):
        prefix = "%s:" % chains[a] if multi and chains[a] else ""
        parts.append("%s%d" % (prefix, numbers[a]) if a == b else
                     "%s%d\u2013%d" % (prefix, numbers[a], numbers[b]))
    if limit is not None and len(parts) > limit:
        return ", ".join(parts[:limit]) + " (+%d more)" % (len(parts) - limit)
    return ", ".join(parts)


def ranks(x):
    """Ranks along axis 0 (ties get their mean rank)."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(len(x), -1)
    order = np.argsort(flat, axis=0, kind="stable")
    out = np.empty_like(flat)
    np.put_along_axis(out, order, np.arange(1, len(x) + 1, dtype=np.float64)[:, None], axis=0)
    ordered = np.take_along_axis(flat, order, axis=0)
    for j in np.flatnonzero((np.diff(ordered, axis=0) == 0).any(axis=0)):    # columns with ties
        values, inverse, counts = np.unique(flat[:, j], return_inverse=True, return_counts=True)
        out[:, j] = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse.ravel()]
    return out.reshape(x.shape)


def rank_correlation(rx, ry):
    """Pearson correlation of ranks rx (N,) with each column of ry (N, K); NaN for a constant one."""
    rx = rx - rx.mean()
    ry = ry - ry.mean(0)
    den = np.sqrt((rx ** 2).sum() * (ry ** 2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx[:, None] * ry).sum(0) / np.where(den > 0, den, 1.0), np.nan)


def spearman(x, y):
    """Spearman rank correlation of ``x`` (N,) with each column of ``y`` (N,) or (N, K); NaN where
    a column is constant."""
    y = np.asarray(y, dtype=np.float64)
    rho = rank_correlation(ranks(x), ranks(y.reshape(len(y), -1)))
    return float(rho[0]) if y.ndim == 1 else rho


def binned_quantiles(x, values, bins):
    """Equal-count bins of ``x`` (N,): ``(centres (B,), quantiles (B, 3, K))`` with the 25th,
    50th and 75th percentiles of each column of ``values`` (N, K) in each bin; the centre is the
    bin's median x."""
    x = np.asarray(x, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(len(x), -1)
    bins = int(max(1, min(bins, len(x))))
    chunks = [c for c in np.array_split(np.argsort(x, kind="stable"), bins) if len(c)]
    centres = np.array([np.median(x[c]) for c in chunks])
    q = np.array([np.percentile(values[c], [25, 50, 75], axis=0) for c in chunks])
    return centres, q.reshape(len(chunks), 3, values.shape[1])


def principal_components(z, n=3, return_ratio=False):
    """Scores of ``z`` (N, D) on its first ``n`` principal components, each oriented so that its
    largest loading is positive (a reproducible sign); with ``return_ratio`` also the fraction of
    the variance each component explains (:func:`flexplugin.engine.analysis.pca.pca`); none for
    fewer than two points."""
    z = np.asarray(z, dtype=np.float64)
    if len(z) < 2 or not z.shape[1]:
        scores, ratio = np.zeros((len(z), 0)), np.zeros(0)
    else:
        scores, _, ratio, _ = pca(z, n)
    return (scores, ratio) if return_ratio else scores
