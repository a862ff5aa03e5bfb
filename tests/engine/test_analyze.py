"""``flexplugin analyze`` on a small cryoDRGN model trained on three discrete volumes (D=32,
SNR 1, known poses): the files the Scipion protocols read, k-means against the true classes,
maps at the centres against ``flexplugin decode``, PC traversals and the graph path."""
import json
import os

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

from cli_helpers import run_cli, simulate_three_volumes
from flexplugin.engine.io import read_mrc

torch.set_num_threads(1)

SMALL = ["--enc-dim", 64, "--enc-layers", 1, "--dec-dim", 64, "--dec-layers", 2,
         "--lr", 1e-3, "--batch-size", 16, "--threads", 1, "--log-every", 0]
N, BOX, APIX, POINTS = 900, 32, 3.0, 5
# 900 particles, zdim 2, 15 epochs: ARI of the analysis' k-means(3) against the true classes
# measured 0.984 (10 epochs gave 0.91 for two seeds: the whole object and its swung-arm state
# separate last); latent points carrying no information give ~0.
ARI_MIN = 0.9


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyze")
    data = simulate_three_volumes(root, N, BOX, APIX)
    model = root / "model"
    assert run_cli("train", "cryodrgn", "--particles", data / "particles.star", "--out", model,
                   "--epochs", 15, "--zdim", 2, "--seed", 0, *SMALL) == 0
    return data, model


@pytest.fixture(scope="module")
def analysis(trained):
    data, model = trained
    labels = np.load(data / "labels.npy")
    i, j = int(np.flatnonzero(labels == 0)[0]), int(np.flatnonzero(labels == 2)[0])
    out = model.parent / "analysis"
    assert run_cli("analyze", "--model", model, "--z", model / "z.npy", "--out", out,
                   "--kmeans", 3, "--pcs", 2, "--traversal-points", POINTS, "--path", "%d,%d" % (i, j),
                   "--seed", 0, "--threads", 1) == 0
    return out, np.load(model / "z.npy"), labels, (i, j)


def _maps(folder):
    return sorted(f for f in os.listdir(folder) if f.startswith("vol_") and f.endswith(".mrc"))


def test_files_and_shapes(analysis):
    out, z, _, _ = analysis
    n = len(z)
    assert np.load(out / "zred.npy").shape == (n, 2)
    pcs = np.load(out / "pca.npy")
    assert pcs.shape == (n, 2)
    # zred is the PCA when UMAP is not asked for
    assert np.allclose(np.load(out / "zred.npy"), pcs, atol=1e-5)
    ratio = np.loadtxt(out / "pca_variance.txt")
    assert ratio.shape == (2,) and np.all(np.diff(ratio) <= 0) and abs(ratio.sum() - 1) < 1e-6
    labels = np.load(out / "kmeans_labels.npy")
    assert labels.shape == (n,) and np.issubdtype(labels.dtype, np.integer)
    assert set(labels.tolist()) == {0, 1, 2}
    assert np.loadtxt(out / "kmeans_centers.txt").shape == (3, 2)
    assert np.loadtxt(out / "kmeans_nearest.txt", dtype=int).shape == (3,)
    assert _maps(out / "kmeans") == ["vol_000.mrc", "vol_001.mrc", "vol_002.mrc"]
    for k in ("pc1", "pc2"):
        assert len(_maps(out / k)) == POINTS
        assert np.loadtxt(out / k / "z_values.txt").shape == (POINTS, 2)
    vol, apix = read_mrc(out / "pc1" / "vol_000.mrc")
    assert vol.shape == (BOX,) * 3 and abs(apix - APIX) < 1e-5
    for png in ("landscape.png", "pca_variance.png", "cluster_sizes.png"):
        with open(out / png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "analysis.json").read_text())
    written = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
    assert sorted(summary["files"]) == written
    assert summary["parameters"]["kmeans"] == 3 and summary["zdim"] == 2


def test_kmeans_recovers_classes(analysis):
    out, z, truth, _ = analysis
    labels = np.load(out / "kmeans_labels.npy")
    ari = adjusted_rand_score(truth, labels)
    print("analyze: ARI of k-means(3) against the true classes = %.3f" % ari)
    assert ari > ARI_MIN
    centers = np.loadtxt(out / "kmeans_centers.txt")
    nearest = np.loadtxt(out / "kmeans_nearest.txt", dtype=int)
    for c, i in zip(centers, nearest):
        assert i == np.argmin(((z - c) ** 2).sum(1))
    # each centre is the mean of its cluster
    for k, c in enumerate(centers):
        assert np.allclose(z[labels == k].mean(0), c, atol=1e-4)


def test_kmeans_maps_equal_decode(analysis, tmp_path):
    out, z, _, _ = analysis
    nearest = np.loadtxt(out / "kmeans_nearest.txt", dtype=int)
    np.savetxt(tmp_path / "z.txt", z[nearest])
    assert run_cli("decode", "--model", out.parent / "model", "--z-file", tmp_path / "z.txt",
                   "--out", tmp_path / "dec") == 0
    for k in range(3):
        ours, apix = read_mrc(out / "kmeans" / ("vol_%03d.mrc" % k))
        ref, apix_ref = read_mrc(tmp_path / "dec" / ("vol_%03d.mrc" % k))
        assert apix == apix_ref
        assert np.allclose(ours, ref, atol=1e-5 * np.abs(ref).max())
    # three different states: the maps differ
    a, _ = read_mrc(out / "kmeans" / "vol_000.mrc")
    b, _ = read_mrc(out / "kmeans" / "vol_001.mrc")
    assert np.abs(a - b).max() > 0.05 * np.abs(a).max()


def test_traversals_span_percentiles(analysis):
    out, z, _, _ = analysis
    pcs = np.load(out / "pca.npy")
    mean = z.mean(0)
    for k in range(2):
        zv = np.loadtxt(out / ("pc%d" % (k + 1)) / "z_values.txt")
        d = zv[-1] - zv[0]
        d /= np.linalg.norm(d)
        # the points lie on a line through the mean, along component k (up to its sign)
        proj = (z - mean) @ d
        sign = np.sign(np.corrcoef(proj, pcs[:, k])[0, 1])
        assert np.allclose(proj * sign, pcs[:, k], atol=1e-4)
        t = (zv - mean) @ d * sign
        assert np.allclose(zv, mean + np.outer(t * sign, d), atol=1e-4)
        lo, hi = np.percentile(pcs[:, k], [5, 95])
        assert np.allclose(np.sort(t), np.linspace(lo, hi, POINTS), atol=1e-4)
        assert np.all((t >= lo - 1e-4) & (t <= hi + 1e-4))


def test_path_connects_endpoints(analysis):
    out, z, _, (i, j) = analysis
    idx = np.loadtxt(out / "path" / "indices.txt", dtype=int)
    assert idx[0] == i and idx[-1] == j and 2 <= len(idx) <= POINTS
    assert np.allclose(np.loadtxt(out / "path" / "z_values.txt"), z[idx], atol=1e-5)
    assert len(_maps(out / "path")) == len(idx)
    nodes = json.loads((out / "analysis.json").read_text())["path"]["nodes"]
    assert nodes[0] == i and nodes[-1] == j and set(idx) <= set(nodes)
    # every hop is an edge of the (symmetric) 10-nearest-neighbour graph
    nn = NearestNeighbors(n_neighbors=11).fit(z).kneighbors(z, return_distance=False)
    for a, b in zip(nodes[:-1], nodes[1:]):
        assert b in nn[a] or a in nn[b]
    # and the path is no longer than going straight would be with a detour of a few hops
    length = np.linalg.norm(np.diff(z[nodes], axis=0), axis=1).sum()
    assert length < 3 * np.linalg.norm(z[i] - z[j])


def test_bad_inputs(trained, tmp_path):
    _, model = trained
    np.save(tmp_path / "z3.npy", np.zeros((10, 3)))
    assert run_cli("analyze", "--model", model, "--z", tmp_path / "z3.npy", "--out", tmp_path / "a") == 2
    assert run_cli("analyze", "--model", model, "--z", model / "z.npy", "--out", tmp_path / "b",
                   "--path", "0,%d" % N) == 2
    assert run_cli("analyze", "--model", model, "--z", model / "z.npy", "--out", tmp_path / "c",
                   "--box", 33) == 2


@pytest.mark.slow
def test_umap_3d_and_small_box(trained, tmp_path):
    """UMAP (umap-learn; ~20 s of numba compilation on first use) in 3D, maps at a smaller box."""
    _, model = trained
    z = np.load(model / "z.npy")[:300]
    np.save(tmp_path / "z.npy", z)
    out = tmp_path / "out"
    assert run_cli("analyze", "--model", model, "--z", tmp_path / "z.npy", "--out", out, "--umap",
                   "--ndim", 3, "--pcs", 1, "--traversal-points", 2, "--box", 16, "--threads", 1) == 0
    zred = np.load(out / "zred.npy")
    assert zred.shape == (300, 3) and np.isfinite(zred).all()
    assert not np.allclose(zred[:, 0], np.load(out / "pca.npy")[:, 0])
    assert np.load(out / "pca.npy").shape == (300, 2)       # every component of z (zdim 2 < ndim 3)
    assert os.path.isdir(out / "pc1") and not os.path.exists(out / "pc2")
    vol, apix = read_mrc(out / "pc1" / "vol_001.mrc")
    assert vol.shape == (16, 16, 16) and abs(apix - 2 * APIX) < 1e-5
    assert not os.path.exists(out / "kmeans_labels.npy")
    assert json.loads((out / "analysis.json").read_text())["zred"] == "umap"
