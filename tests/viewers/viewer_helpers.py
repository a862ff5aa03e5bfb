"""Helpers of the viewer tests: screenshots (tests/artifacts/viewer_*.png), synthetic landscapes and
maps, and stand-ins for the Scipion objects the app reads (a finished landscape analysis run)."""
import json
import os

import numpy as np

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "artifacts")


def screenshot(widget, name):
    """Show ``widget`` and save its picture as tests/artifacts/viewer_<name>.png."""
    from PyQt5 import QtWidgets
    widget.show()
    for _ in range(3):
        QtWidgets.QApplication.processEvents()
    path = os.path.join(ARTIFACTS, "viewer_%s.png" % name)
    assert widget.grab().save(path)
    assert os.path.getsize(path) > 10000
    return path


def grid_landscape(n_side=10):
    """Particles on an integer grid x, y in 0..n_side-1; ids 1001.. in row order."""
    yy, xx = np.mgrid[:n_side, :n_side]
    zred = np.column_stack([xx.ravel(), yy.ravel()]).astype(float)
    ids = 1001 + np.arange(len(zred))
    return zred, ids


def map_series(n=5, box=32):
    """n maps (box^3): a fixed blob and one moving along y; and a spherical mask."""
    g = np.mgrid[:box, :box, :box].astype(np.float32) - box // 2
    out = []
    for t in np.linspace(-1, 1, n):
        a = np.exp(-((g[0]) ** 2 + (g[1]) ** 2 + (g[2] + 5) ** 2) / 30.0)
        b = np.exp(-((g[0] - 2) ** 2 + (g[1] - 6 * t) ** 2 + (g[2] - 6) ** 2) / 16.0)
        out.append(a + b)
    mask = (np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2) < 10).astype(np.float32)
    return out, mask


def write_map_files(folder, n, box=24):
    """n maps of :func:`map_series` written as folder/vol_000.mrc... (2 Å per voxel)."""
    from flexplugin.viewers.map_files import write_map
    vols, _ = map_series(n=n, box=box)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_map(folder / ("vol_%03d.mrc" % i), v, apix=2.0) for i, v in enumerate(vols)]


class Obj:
    """A stand-in for the Scipion objects the app reads (particles, classes, volumes, runs)."""

    def __init__(self, **attrs):
        self.__dict__.update(attrs)

    def __getattr__(self, name):                     # getFoo() -> self.foo
        if name.startswith("get") and name[3:4].isupper():
            key = name[3].lower() + name[4:]
            if key in self.__dict__:
                return lambda: self.__dict__[key]
        raise AttributeError(name)


class FakeSet(list):
    """A stand-in for a Scipion set of those objects."""

    def iterItems(self, orderBy=None):
        return iter(self)

    def hasCTF(self):
        return False


SAVED_PLOTS = {"landscape.png": (90, 160), "pca_variance.png": (60, 80), "cluster_sizes.png": (50, 70)}


def landscape_run(tmp_path, n=120, zdim=10, k=3, scale=1e-3, reduction="pca", plots=False):
    """A landscape analysis run as the app sees it: particles with z (zdim) and zred (tiny values,
    where an SI prefix would show), k classes (ids 1..k), and its extra/landscape/analysis.json;
    with ``plots`` the pictures of SAVED_PLOTS too ({name: (height, width)}, grey), listed in
    analysis.json's files as ``flexplugin analyze`` lists them."""
    rng = np.random.default_rng(5)
    label = np.arange(n) % k
    z = rng.normal(size=(n, zdim)) + 3 * label[:, None]
    zred = scale * np.column_stack([label + 0.1 * rng.normal(size=n), rng.normal(size=n)])
    particles = FakeSet(Obj(objId=i + 1, zFlex=list(z[i]), zRed=zred[i], CTF=None) for i in range(n))
    classes = FakeSet(Obj(objId=c + 1, size=int((label == c).sum()),
                          iterItems=lambda c=c: iter([p for p, lab in zip(particles, label) if lab == c]))
                      for c in range(k))
    folder = tmp_path / "Runs" / "000002_ProtFlexLandscape" / "extra" / "landscape"
    folder.mkdir(parents=True)
    analysis = {"zred": reduction, "pca_variance": [0.613, 0.2, 0.1]}
    if plots:
        from matplotlib.image import imsave
        for name, shape in SAVED_PLOTS.items():
            imsave(folder / name, np.full(shape, 0.5), cmap="gray", vmin=0, vmax=1)
        analysis["files"] = ["pca.npy", "zred.npy"] + list(SAVED_PLOTS) + ["analysis.json"]
    (folder / "analysis.json").write_text(json.dumps(analysis))
    prot = Obj(outputParticles=particles, outputClasses=classes, workingDir="Runs/000002_ProtFlexLandscape",
               runName="flexplugin - landscape analysis")
    return Obj(path=str(tmp_path)), prot, label
