"""Latent-space landscape of a trained model: PCA, UMAP, k-means, traversals and plots.

:func:`analyze` works for every method through the Method contract only (``zdim``,
``data_info`` and ``decode_volume``); the latent points come from ``z.npy`` (``encode`` or the
end of training). It writes into ``out`` (the Scipion protocols read these names):

- ``zred.npy`` (N, ndim): the UMAP embedding (``umap=True``) or the first ``ndim`` principal
  components (zero columns where ``zdim < ndim``);
- ``pca.npy`` (N, min(max(pcs, ndim), zdim)): principal-component coordinates; ``pca_variance.txt``: the
  explained variance ratio of each of those components, one per line;
- with ``kmeans=K``: ``kmeans_labels.npy`` (N,) int, ``kmeans_centers.txt`` (K, zdim),
  ``kmeans_nearest.txt`` (the index of the particle nearest each centre) and the maps decoded at
  those particles' z, ``kmeans/vol_000.mrc ...`` (with ``kmeans/z_values.txt``);
- for each of the first ``pcs`` components: ``pc<k>/vol_000.mrc ...`` decoded at
  ``traversal_points`` points from the component's 5th to its 95th percentile (the other
  components at their mean), and ``pc<k>/z_values.txt`` (one latent point per line);
- with ``path=(I, J)``: a traversal between particles I and J along the shortest path of the
  k-nearest-neighbour graph of z (edges weighted by Euclidean distance): ``traversal_points``
  maps at path nodes spread evenly along the path's length, ``path/vol_*.mrc``,
  ``path/z_values.txt`` and ``path/indices.txt`` (the particle index of each map; the first is I,
  the last J; the whole node sequence is in ``analysis.json``);
- ``landscape.png`` (density and scatter of zred, coloured by cluster with k-means; axes named
  as :func:`axis_labels`, classes numbered 1..K as the Scipion classes),
  ``pca_variance.png``, ``cluster_sizes.png`` (with k-means, classes 1..K);
- ``analysis.json``: the parameters, the model's method/zdim/box, and every file written.

Maps carry their voxel size (``apix * box_train / D``) and a centred origin, as ``flexplugin
decode`` writes them.
"""
import glob
import json
import os

import numpy as np

from ...constants import (ANALYSIS_JSON, CLUSTER_SIZES_PLOT, KMEANS_LABELS_FILE, LANDSCAPE_PLOT,
                          PCA_FILE, PCA_VARIANCE_PLOT, Z_VALUES_FILE, ZRED_FILE)
from ..errors import InputError
from ..io.mrc import save_npy, save_txt
from .pca import pca

PERCENTILES = (5.0, 95.0)
GRAPH_NEIGHBOURS = 10


def decode_maps(model, zs, out_dir, box=None, prefix="vol_"):
    """Decode ``zs`` (M, zdim) with ``model`` into ``out_dir/vol_000.mrc ...``; returns the paths.

    Earlier ``vol_*.mrc`` files in ``out_dir`` not part of the new series are removed after it is
    written, so the folder holds exactly this series."""
    import torch
    from ..io import write_mrc
    os.makedirs(out_dir, exist_ok=True)
    old = set(glob.glob(os.path.join(out_dir, prefix + "*.mrc")))
    info = model.data_info
    paths = []
    for i, z in enumerate(np.asarray(zs, dtype=np.float32).reshape(len(zs), -1)):
        with torch.no_grad():
            vol = model.decode_volume(torch.as_tensor(z), box=box)
        vol = vol.detach().cpu().numpy() if hasattr(vol, "detach") else np.asarray(vol)
        path = os.path.join(out_dir, "%s%03d.mrc" % (prefix, i))
        write_mrc(path, vol.astype(np.float32, copy=False), info.apix * info.box / vol.shape[0],
                  origin_centered=True)
        paths.append(path)
    # Only once the new series is written (each map replacing its predecessor atomically): a
    # failed write leaves the earlier maps.
    for stale in old - set(paths):
        os.remove(stale)
    return paths


def run_umap(z, ndim, seed):
    """UMAP embedding (N, ndim) of z (umap-learn, the package's default neighbours and distance)."""
    try:
        import umap
    except ImportError as exc:
        raise InputError("--umap", "UMAP needs the umap-learn package in the engine environment "
                                   "(pip install umap-learn): %s" % exc)
    import warnings
    n_neighbors = max(2, min(15, len(z) - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emb = umap.UMAP(n_components=ndim, n_neighbors=n_neighbors, random_state=seed).fit_transform(z)
    return np.asarray(emb, dtype=np.float32)


def kmeans(z, k, seed):
    """(labels (N,), centres (k, zdim), index of the particle nearest each centre (k,))."""
    from sklearn.cluster import KMeans
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
    centers = km.cluster_centers_
    nearest = np.array([int(np.argmin(((z - c) ** 2).sum(1))) for c in centers])
    return km.labels_.astype(np.int64), centers, nearest


def pc_traversal(coords, components, mean, k, n_points):
    """Latent points (n_points, zdim) along component ``k`` from its 5th to 95th percentile."""
    lo, hi = np.percentile(coords[:, k], PERCENTILES)
    t = np.linspace(lo, hi, n_points)
    return mean[None, :] + t[:, None] * components[k][None, :]


def graph_path(z, i, j, neighbours=GRAPH_NEIGHBOURS):
    """Particle indices of the shortest path from i to j in the symmetric k-nearest-neighbour
    graph of z (Euclidean edge lengths); the neighbour count doubles until i and j connect."""
    from scipy.sparse.csgraph import dijkstra
    from sklearn.neighbors import kneighbors_graph
    n = len(z)
    if i == j:
        return np.array([i])
    k = min(neighbours, n - 1)
    # Identical points are at distance 0, which a sparse graph would read as "no edge".
    eps = 1e-9 * max(float(np.ptp(z, axis=0).max()), 1e-12)
    while True:
        g = kneighbors_graph(z, k, mode="distance", include_self=False)
        g.data += eps
        g = g.maximum(g.T)
        dist, pred = dijkstra(g, directed=False, indices=i, return_predecessors=True)
        if np.isfinite(dist[j]):
            break
        if k >= n - 1:
            raise InputError("--path", "particles %d and %d are not connected" % (i, j))
        k = min(2 * k, n - 1)
    nodes = [j]
    while nodes[-1] != i:
        nodes.append(int(pred[nodes[-1]]))
    return np.array(nodes[::-1])


def spread_along(z_path, n_points):
    """Positions (indices into the path) of n_points nodes spread evenly along its length (the
    first and the last node always included; fewer when the path has fewer distinct nodes)."""
    steps = np.linalg.norm(np.diff(z_path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(steps)])
    if len(z_path) <= n_points:
        return np.arange(len(z_path))
    if s[-1] == 0:
        return np.linspace(0, len(z_path) - 1, n_points).round().astype(int)
    targets = np.linspace(0.0, s[-1], n_points)
    pos = [int(np.argmin(np.abs(s - t))) for t in targets]
    pos[0], pos[-1] = 0, len(z_path) - 1
    return np.array(sorted(set(pos)))


# ---------------------------------------------------------------- plots

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def axis_labels(umap, ratio, ndim):
    """Names of the ``ndim`` landscape coordinates: "UMAP 1", ... or "PCA 1 (61% of variance)", ...
    (``ratio``: the explained variance ratio of the principal components)."""
    if umap:
        return ["UMAP %d" % (k + 1) for k in range(ndim)]
    return ["PCA %d (%s of variance)" % (k + 1, _percent(ratio[k])) if k < len(ratio) else "PCA %d" % (k + 1)
            for k in range(ndim)]


def _percent(ratio):
    p = 100.0 * float(ratio)
    return "%.0f%%" % p if p >= 1 or p == 0 else "%.1f%%" % p


def plot_landscape(path, zred, labels=None, centers_2d=None, title="latent landscape", axis_names=None):
    """Density and scatter of the first two columns of ``zred``; with ``labels`` (0-based k-means
    clusters) the points are coloured and the centres marked by class, numbered 1..K as the
    Scipion classes and the viewers number them."""
    plt = _plt()
    x, y = zred[:, 0], (zred[:, 1] if zred.shape[1] > 1 else np.zeros(len(zred)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    hb = axes[0].hexbin(x, y, gridsize=60, bins="log", cmap="viridis", mincnt=1)
    fig.colorbar(hb, ax=axes[0], label="particles (log)")
    axes[0].set_title("density")
    size = float(np.clip(2e4 / max(len(zred), 1), 0.5, 20))
    if labels is not None:
        k = int(labels.max()) + 1
        cmap = plt.get_cmap("tab10" if k <= 10 else "tab20")
        axes[1].scatter(x, y, c=labels, cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5, s=size,
                        alpha=0.6, linewidths=0, rasterized=True)
        if centers_2d is not None:
            for c, (cx, cy) in enumerate(centers_2d):
                axes[1].annotate(str(c + 1), (cx, cy), ha="center", va="center", fontweight="bold",
                                 bbox=dict(boxstyle="circle", fc="white", alpha=0.8))
        axes[1].set_title("k-means classes 1\u2013%d" % k if k > 1 else "k-means class 1")
    else:
        axes[1].scatter(x, y, s=size, alpha=0.5, linewidths=0, color="k", rasterized=True)
        axes[1].set_title("particles")
    names = list(axis_names or []) + ["dim %d" % (i + 1) for i in range(len(axis_names or []), 2)]
    for ax in axes:
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    fig.suptitle("%s (%d particles)" % (title, len(zred)))
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def plot_pca_variance(path, ratio):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    idx = np.arange(1, len(ratio) + 1)
    ax.bar(idx, ratio, color="tab:blue")
    ax.plot(idx, np.cumsum(ratio), "o-", color="tab:orange", label="cumulative")
    ax.set_xticks(idx)
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    ax.set_ylim(0, 1.05)
    ax.legend()
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def plot_cluster_sizes(path, labels, k):
    plt = _plt()
    counts = np.bincount(labels, minlength=k)
    fig, ax = plt.subplots(figsize=(max(4, 0.4 * k + 2), 4))
    ax.bar(np.arange(1, k + 1), counts, color="tab:green")
    ax.set_xticks(np.arange(1, k + 1))
    ax.set_xlabel("k-means class")
    ax.set_ylabel("particles")
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


# ---------------------------------------------------------------- driver

def _savefig(fig, path):
    from ..io.mrc import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format=os.path.splitext(path)[1][1:] or "png")


def _savetxt(path, array, fmt="%.9g"):
    save_txt(path, np.atleast_1d(array), fmt=fmt)


def analyze(model, z, out, kmeans_k=0, pcs=2, umap=False, ndim=2, traversal_points=10,
            path=None, box=None, seed=0, log=print):
    """Landscape analysis of latent points ``z`` (N, zdim) of ``model`` (a Method); see the
    module docstring for the files written into ``out``. Returns the summary written to
    ``analysis.json``."""
    z = np.asarray(z, dtype=np.float64)
    zdim = int(model.zdim)
    if zdim < 1:
        raise InputError("--model", "the model is homogeneous (zdim 0): no latent space to analyse")
    if z.ndim == 1 and zdim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[1] != zdim:
        raise InputError("--z", "latent points of shape %s, the model's zdim is %d"
                         % (tuple(z.shape), zdim))
    if not np.isfinite(z).all():
        raise InputError("--z", "latent points contain NaN or inf")
    n = len(z)
    if n < 2:
        raise InputError("--z", "at least 2 latent points are needed (got %d)" % n)
    if ndim not in (2, 3):
        raise InputError("--ndim", "must be 2 or 3 (got %d)" % ndim)
    if pcs < 0:
        raise InputError("--pcs", "must be 0 or more (got %d)" % pcs)
    if traversal_points < 2:
        raise InputError("--traversal-points", "must be at least 2 (got %d)" % traversal_points)
    if kmeans_k < 0 or kmeans_k > n:
        raise InputError("--kmeans", "must be between 0 and the number of particles %d (got %d)"
                         % (n, kmeans_k))
    if path is not None:
        path = tuple(int(v) for v in path)
        if len(path) != 2 or not all(0 <= v < n for v in path):
            raise InputError("--path", "two particle indices in [0, %d) are needed (got %s)"
                             % (n, ",".join(map(str, path))))
    n_comp = min(max(pcs, ndim), zdim)     # principal components: the traversals' and zred's
    if n_comp > n:
        raise InputError("--z", "%d latent points give at most %d principal components, %d are needed "
                                "(--pcs %d, --ndim %d)" % (n, n, n_comp, pcs, ndim))
    d0 = model.data_info.box
    if box is not None and (box > d0 or box % 2 or box < 2):
        raise InputError("--box", "must be even and at most the training box %d (got %d)" % (d0, box))

    os.makedirs(out, exist_ok=True)
    files = []

    def rel(p):
        files.append(os.path.relpath(p, out))
        return p

    # PCA: enough components for the traversals and for zred.
    n_pc = min(pcs, zdim)                  # traversals
    coords, comps, ratio, mean = pca(z, n_comp)
    save_npy(rel(os.path.join(out, PCA_FILE)), coords.astype(np.float32))
    _savetxt(rel(os.path.join(out, "pca_variance.txt")), ratio)
    log("analyze: %d particles, zdim %d; PCA explained variance %s"
        % (n, zdim, ", ".join("%.3f" % r for r in ratio)))

    if umap:
        log("analyze: UMAP (%d dimensions)" % ndim)
        zred = run_umap(z.astype(np.float32), ndim, seed)
    else:
        zred = np.zeros((n, ndim), dtype=np.float32)
        m = min(ndim, coords.shape[1])
        zred[:, :m] = coords[:, :m]
    save_npy(rel(os.path.join(out, ZRED_FILE)), zred.astype(np.float32))

    summary = {"method": model.name, "zdim": zdim, "box_train": int(d0),
               "apix_train": float(model.data_info.apix), "n_particles": n,
               "parameters": {"kmeans": kmeans_k, "pcs": pcs, "umap": bool(umap), "ndim": ndim,
                              "traversal_points": traversal_points,
                              "path": list(path) if path else None, "box": box, "seed": seed,
                              "percentiles": list(PERCENTILES)},
               "zred": "umap" if umap else "pca",
               "pca_variance": [float(r) for r in ratio]}

    labels = None
    centers_2d = None
    if kmeans_k:
        labels, centers, nearest = kmeans(z, kmeans_k, seed)
        save_npy(rel(os.path.join(out, KMEANS_LABELS_FILE)), labels)
        _savetxt(rel(os.path.join(out, "kmeans_centers.txt")), np.atleast_2d(centers))
        _savetxt(rel(os.path.join(out, "kmeans_nearest.txt")), nearest, fmt="%d")
        kdir = os.path.join(out, "kmeans")
        for p in decode_maps(model, z[nearest], kdir, box=box):
            rel(p)
        _savetxt(rel(os.path.join(kdir, Z_VALUES_FILE)), np.atleast_2d(z[nearest]))
        centers_2d = zred[nearest, :2] if zred.shape[1] >= 2 else None
        sizes = np.bincount(labels, minlength=kmeans_k)
        summary["kmeans"] = {"sizes": sizes.tolist(), "nearest": nearest.tolist()}
        log("analyze: k-means %d clusters, sizes %s; maps in %s"
            % (kmeans_k, " ".join(map(str, sizes)), kdir))

    traversals = {}
    for k in range(n_pc):
        zs = pc_traversal(coords, comps, mean, k, traversal_points)
        pdir = os.path.join(out, "pc%d" % (k + 1))
        for p in decode_maps(model, zs, pdir, box=box):
            rel(p)
        _savetxt(rel(os.path.join(pdir, Z_VALUES_FILE)), zs)
        lo, hi = np.percentile(coords[:, k], PERCENTILES)
        traversals["pc%d" % (k + 1)] = [float(lo), float(hi)]
        log("analyze: PC%d traversal, %d maps in %s" % (k + 1, traversal_points, pdir))
    summary["pc_traversals"] = traversals

    if path is not None:
        nodes = graph_path(z, path[0], path[1])
        pos = spread_along(z[nodes], traversal_points)
        idx = nodes[pos]
        gdir = os.path.join(out, "path")
        for p in decode_maps(model, z[idx], gdir, box=box):
            rel(p)
        _savetxt(rel(os.path.join(gdir, Z_VALUES_FILE)), np.atleast_2d(z[idx]))
        _savetxt(rel(os.path.join(gdir, "indices.txt")), idx, fmt="%d")
        summary["path"] = {"nodes": nodes.tolist(), "indices": idx.tolist(),
                           "length": float(np.linalg.norm(np.diff(z[nodes], axis=0), axis=1).sum())}
        log("analyze: path %d -> %d through %d particles, %d maps in %s"
            % (path[0], path[1], len(nodes), len(idx), gdir))

    plot_landscape(rel(os.path.join(out, LANDSCAPE_PLOT)), zred, labels, centers_2d,
                   title="UMAP" if umap else "PCA", axis_names=axis_labels(umap, ratio, ndim))
    plot_pca_variance(rel(os.path.join(out, PCA_VARIANCE_PLOT)), ratio)
    if kmeans_k:
        plot_cluster_sizes(rel(os.path.join(out, CLUSTER_SIZES_PLOT)), labels, kmeans_k)

    files.append(ANALYSIS_JSON)
    summary["files"] = files
    from ..io.mrc import atomic_path
    with atomic_path(os.path.join(out, ANALYSIS_JSON)) as tmp:
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=1)
    log("analyze: wrote %d files to %s" % (len(files), out))
    return summary
