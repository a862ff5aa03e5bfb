"""Principal components of latent points, numpy only (no torch, no scikit-learn): the one PCA of
the engine's landscape analysis and pose measures, the viewers and the benchmarks."""
import numpy as np

__all__ = ["pca"]


def pca(z, n=None, orient=True):
    """Principal components of ``z`` (N, D), from the SVD of the centred points in float64:
    ``(scores (N, k), components (k, D), explained variance ratio (k,), mean (D,))`` for the first
    ``k = min(n, N, D)`` components (``n`` None: all of them).

    :param orient: turn each component so that its largest loading (the first of equal magnitude)
        is positive, a sign that does not depend on the LAPACK build (scikit-learn's PCA does the
        same); False: the sign the SVD returns.

    The ratio is each component's share of the variance of all of ``z`` (zeros when ``z`` does not
    vary); the scores are ``(z - mean) @ components.T``.
    """
    z = np.asarray(z, dtype=np.float64)
    z = z.reshape(len(z), -1)
    mean = z.mean(0) if len(z) else np.zeros(z.shape[1])
    zc = z - mean
    k = min(zc.shape[1] if n is None else int(n), *zc.shape)
    if k <= 0:
        return np.zeros((len(z), 0)), np.zeros((0, zc.shape[1])), np.zeros(0), mean
    _, sv, vt = np.linalg.svd(zc, full_matrices=False)
    components = vt[:k]
    if orient:
        largest = components[np.arange(k), np.argmax(np.abs(components), axis=1)]
        components = components * np.sign(largest)[:, None]
    total = float((sv ** 2).sum())
    ratio = sv[:k] ** 2 / total if total > 0 else np.zeros(k)
    return zc @ components.T, components, ratio, mean
