"""The PyQt5 windows (offscreen) and the decoder-server client, against a fake server script that
speaks the ``flexplugin serve`` protocol with numpy only (no torch); against the engine's own
server: test_click_real_server.py. Screenshots of every window go
to tests/artifacts/viewer_*.png."""
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
QtWidgets = pytest.importorskip("PyQt5.QtWidgets")
pytest.importorskip("pyqtgraph")

from flexplugin.viewers.serve_client import DecoderClient, DecoderError  # noqa: E402

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "artifacts")

# The fake decoder: a map with two Gaussian blobs, one moved by z[0], z[1] and scaled by z[2].
FAKE_SERVER = textwrap.dedent('''
    import base64, json, os, sys
    import numpy as np

    ZDIM, BOX, APIX = 4, 24, 4.0

    def make_map(z, box):
        g = np.mgrid[:box, :box, :box].astype(np.float32) - box // 2
        s = box / 24.0
        a = np.exp(-((g[0]) ** 2 + (g[1] - 3 * s * z[1]) ** 2 + (g[2] - 3 * s * z[0]) ** 2) / (8 * s * s))
        b = np.exp(-((g[0] - 2 * s) ** 2 + (g[1] + 4 * s) ** 2 + (g[2] + 4 * s) ** 2) / (6 * s * s))
        return ((1.0 + 0.1 * z[2]) * a + b + 0.01 * z[3]).astype(np.float32)

    if __name__ == "__main__":
        if "--die" in sys.argv:
            sys.stderr.write("error: model.pt: no such checkpoint\\n")
            sys.exit(2)
        print(json.dumps({"ready": True, "method": "fake", "zdim": ZDIM, "box": BOX, "apix": APIX}),
              flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            if req.get("cmd") == "quit":
                break
            rid = req.get("id")
            try:
                z = np.asarray(req["z"], dtype=np.float32)
                if z.ndim != 2 or z.shape[1] != ZDIM:
                    raise ValueError("latent points must have %d values" % ZDIM)
                box = req.get("box") or BOX
                maps = [make_map(v, box) for v in z]
                if req.get("out"):
                    files = []
                    for i, m in enumerate(maps):
                        path = os.path.join(req["out"], "vol_%03d.npy" % i)
                        np.save(path, m)
                        files.append(path)
                    answer = {"id": rid, "files": files}
                else:
                    answer = {"id": rid, "shape": [box] * 3, "dtype": "float32",
                              "arrays": [base64.b64encode(m.astype("<f4").tobytes()).decode() for m in maps]}
            except Exception as e:
                answer = {"id": rid, "error": str(e)}
            print(json.dumps(answer), flush=True)
''')


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory):
    """(path of the fake server script, its make_map function)."""
    path = tmp_path_factory.mktemp("fake-serve") / "fake_serve.py"
    path.write_text(FAKE_SERVER)
    namespace = {}
    exec(compile(FAKE_SERVER, str(path), "exec"), namespace)
    return str(path), namespace["make_map"]


@pytest.fixture(scope="module")
def qapp():
    from PyQt5 import QtWidgets as W
    app = W.QApplication.instance() or W.QApplication([])
    os.makedirs(ARTIFACTS, exist_ok=True)
    yield app


def _screenshot(widget, name):
    widget.show()
    QtWidgets.QApplication.processEvents()
    path = os.path.join(ARTIFACTS, "viewer_%s.png" % name)
    assert widget.grab().save(path)
    assert os.path.getsize(path) > 10000
    return path


def _grid_landscape(n_side=10):
    """Particles on an integer grid x, y in 0..n_side-1; ids 1001.. in row order."""
    yy, xx = np.mgrid[:n_side, :n_side]
    zred = np.column_stack([xx.ravel(), yy.ravel()]).astype(float)
    ids = 1001 + np.arange(len(zred))
    return zred, ids


# ----------------------------------------------------------------------------- client
def test_client_round_trip(fake_server, tmp_path):
    script, make_map = fake_server
    z = np.array([[0.5, -1.0, 2.0, 0.0], [-1.0, 0.0, 0.0, 3.0]])
    with DecoderClient([sys.executable, script]) as dec:
        assert (dec.method, dec.zdim, dec.box, dec.apix) == ("fake", 4, 24, 4.0)
        maps = dec.decode(z)
        assert len(maps) == 2 and maps[0].dtype == np.float32 and maps[0].shape == (24, 24, 24)
        for m, v in zip(maps, z):
            np.testing.assert_array_equal(m, make_map(v.astype(np.float32), 24))
        assert dec.decode(z[0], box=16)[0].shape == (16, 16, 16)      # one vector, other box
        files = dec.decode_to_files(z, tmp_path / "maps")
        assert [os.path.basename(f) for f in files] == ["vol_000.npy", "vol_001.npy"]
        np.testing.assert_array_equal(np.load(files[1]), maps[1])
        with pytest.raises(ValueError, match="zdim is 4"):
            dec.decode([[1.0, 2.0]])                                     # checked client-side
        with pytest.raises(DecoderError, match="must have 4 values"):
            dec.request({"z": [[1.0, 2.0]]})                             # the server's error answer
        np.testing.assert_array_equal(dec.decode(z[:1])[0], maps[0])    # still serving
        proc = dec._proc
    assert proc.poll() == 0 and not dec.alive                            # quit, not killed
    dec.close()                                                          # idempotent


def test_client_reports_server_failure(fake_server):
    script, _ = fake_server
    with pytest.raises(DecoderError, match="no such checkpoint"):
        DecoderClient([sys.executable, script, "--die"], ready_timeout=30)
    with pytest.raises(DecoderError, match="cannot start"):
        DecoderClient(["/nonexistent/flexplugin", "serve"])


# ----------------------------------------------------------------------------- landscape
def test_landscape_selections_and_subset(qapp, tmp_path):
    from flexplugin.viewers.landscape_window import LandscapeWindow
    zred, ids = _grid_landscape()
    received = []
    labels = (zred[:, 0] >= 5).astype(int) + 2 * (zred[:, 1] >= 5)
    win = LandscapeWindow(zred, ids=ids, attributes={"cluster": labels},
                          on_subset=lambda sel, name: received.append((sel, name)),
                          axis_labels=["UMAP 1", "UMAP 2"])
    # rectangle x in [1.5, 3.5], y in [6.5, 8.2] -> x = 2, 3 and y = 7, 8
    got = win.select_in_rect(3.5, 8.2, 1.5, 6.5)
    expected = [1001 + 10 * y + x for y in (7, 8) for x in (2, 3)]
    assert list(got) == expected and list(win.selected_ids()) == expected
    # polygon: the triangle (-0.5, -0.5), (4, -0.5), (-0.5, 4) (edge x + y = 3.5) holds x + y <= 3
    got = win.select_in_polygon([(-0.5, -0.5), (4.0, -0.5), (-0.5, 4.0)])
    expected = [1001 + 10 * y + x for y in range(10) for x in range(10) if x + y <= 3]
    assert list(got) == expected
    # Shift-like add, Ctrl-like remove
    win.select_in_rect(8.5, 8.5, 9.5, 9.5, how="add")
    assert list(win.selected_ids()) == expected + [1100]
    win.select_in_rect(-0.5, -0.5, 0.5, 0.5, how="remove")
    assert list(win.selected_ids()) == expected[1:] + [1100]
    assert win.create_subset("corner") is not None
    sel, name = received[-1]
    assert name == "corner" and list(sel) == expected[1:] + [1100]
    out = tmp_path / "selection.txt"
    assert win.save_selection(str(out)) == len(sel)
    assert [int(v) for v in out.read_text().split()] == list(sel)
    win.clear_selection()
    assert len(win.selected_ids()) == 0 and win.create_subset() is None
    win.load_selection(str(out))
    assert list(win.selected_ids()) == list(sel)
    # a selection written with a name line, as the subset launcher and the protocols write them
    from flexplugin.selection import write_ids
    named = tmp_path / "named.txt"
    write_ids(named, expected[:3], "my subset, 3 particles")
    win.load_selection(str(named))
    assert list(win.selected_ids()) == expected[:3]
    win.select_in_polygon([(4.6, 4.6), (9.4, 4.6), (9.4, 9.4), (7.0, 6.0), (4.6, 9.4)])
    _screenshot(win, "landscape_selection")
    win.close()


def test_landscape_color_by(qapp):
    from flexplugin.viewers.landscape_window import NO_COLOR, PALETTE, LandscapeWindow
    rng = np.random.default_rng(1)
    zred, ids = _grid_landscape()
    attrs = {"cluster": np.repeat([3, 7, 9, 3], 25), "defocus": rng.uniform(1e4, 2.5e4, 100),
             "truth": np.repeat(["open", "closed"], 50)}
    win = LandscapeWindow(zred, ids=ids, attributes=attrs, color_by="defocus")
    assert win.color_by == "defocus" and win.color_combo.currentText() == "defocus"
    assert win.coloring.range is not None and win.colorbar.isVisible()
    assert not win.legend.isVisible()
    win.set_color_by("cluster")
    assert win.color_combo.currentText() == "cluster"
    assert [c[0] for c in win.coloring.categories] == [3, 7, 9]
    assert [c[2] for c in win.coloring.categories] == [50, 25, 25]
    np.testing.assert_array_equal(win.point_colors()[25], PALETTE[1])      # value 7 -> 2nd colour
    assert win.legend.isVisible() and not win.colorbar.isVisible()
    win.color_combo.setCurrentText("truth")                                 # through the combo box
    assert win.color_by == "truth" and [c[0] for c in win.coloring.categories] == ["closed", "open"]
    win.set_color_by(NO_COLOR)
    assert win.coloring.rgb is None and len(np.unique(win.point_colors(), axis=0)) == 1
    with pytest.raises(KeyError):
        win.set_color_by("no such attribute")
    win.close()


def test_landscape_click_decodes_through_server(qapp, fake_server):
    from flexplugin.viewers.landscape_window import LandscapeWindow
    script, make_map = fake_server
    rng = np.random.default_rng(2)
    n = 600
    state = rng.integers(0, 3, n)
    z = np.column_stack([np.array([-1.5, 0.0, 1.5])[state] + 0.2 * rng.normal(size=n),
                         0.3 * rng.normal(size=(n, 3))]).astype(np.float32)
    zred = z[:, :2] * [1.0, 3.0] + 0.05 * rng.normal(size=(n, 2))
    ids = np.arange(1, n + 1) * 3
    with DecoderClient([sys.executable, script]) as dec:
        win = LandscapeWindow(zred, z=z, ids=ids, decoder=dec, attributes={"state": state},
                              axis_labels=["PC 1", "PC 2"])
        i = 123
        picked = win.click_at(zred[i, 0] + 1e-4, zred[i, 1] - 1e-4)
        assert picked == ids[i] and win.last_id == ids[i]
        np.testing.assert_array_equal(win.last_z, z[i])
        np.testing.assert_array_equal(win.last_map, make_map(z[i], 24))
        np.testing.assert_array_equal(win.volume_view.volume, win.last_map)  # shown in the view
        print("decode on click: %.3f s" % win.last_decode_seconds)
        # two quick clicks: the latest one wins
        win.click_at(zred[5, 0], zred[5, 1], wait=False)
        win.click_at(zred[7, 0], zred[7, 1], wait=False)
        assert win.wait_for_decode(60)
        assert win.last_id == ids[7]
        np.testing.assert_array_equal(win.last_map, make_map(z[7], 24))
        win.select_in_rect(zred[:, 0].min() - 1, -0.5, -0.5, 0.5)
        _screenshot(win, "landscape_click")
        win.close()


def test_point_raster_draws_later_points_on_top():
    from flexplugin.viewers.landscape_window import rasterize_points
    rgb = np.array([[255, 0, 0], [0, 0, 255]], dtype=np.uint8)
    img = rasterize_points([2, 3], [5, 5], rgb, width=8, height=10, size=3)
    assert img.shape == (10, 8, 4)                                   # [y, x, rgba]
    assert list(img[5, 3, :3]) == [0, 0, 255] and list(img[5, 2, :3]) == [0, 0, 255]
    assert list(img[5, 1, :3]) == [255, 0, 0] and list(img[4, 2, :3]) == [255, 0, 0]
    assert img[0, 0, 3] == 0 and img[5, 5, 3] == 0 and (img[..., 3] > 0).sum() == 8
    edged = rasterize_points([4], [4], rgb[:1], width=9, height=9, size=5, edge=True)
    assert list(edged[4, 4, :3]) == [255, 0, 0] and list(edged[4, 7, :3]) == [153, 0, 0]


def test_landscape_redraw_1e5_points(qapp):
    from flexplugin.viewers.landscape_window import LandscapeWindow
    rng = np.random.default_rng(3)
    n = 100_000
    centres = np.array([[-4.0, 0.0], [3.0, 3.0], [3.0, -3.0], [0.0, 6.0]])
    label = rng.integers(0, 4, n)
    zred = centres[label] + rng.normal(size=(n, 2)) * [1.0, 0.7]
    t0 = time.perf_counter()
    win = LandscapeWindow(zred, attributes={"cluster": label, "defocus": rng.uniform(1e4, 2.5e4, n)},
                          axis_labels=["UMAP 1", "UMAP 2"])
    win.show()
    qapp.processEvents()
    opened = time.perf_counter() - t0
    timings = {}
    for name in ("defocus", "cluster", "None", "cluster"):
        t0 = time.perf_counter()
        win.set_color_by(name)
        win.plot_widget.grab()                       # forces the paint
        timings[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    win.view.setRange(xRange=(-2, 5), yRange=(-5, 5), padding=0)   # zoom: the points are redrawn
    win.points.redraw()
    win.plot_widget.grab()
    zoom = time.perf_counter() - t0
    t0 = time.perf_counter()
    win.select_in_polygon([(-7, -3), (-1, -3), (-1, 3), (-7, 3)])
    win.plot_widget.grab()
    select = time.perf_counter() - t0
    print("1e5 points: window %.2f s; recolour + paint %s; zoom + paint %.3f s; lasso + paint %.3f s;"
          " point raster %.3f s" % (opened, ", ".join("%s %.3f s" % kv for kv in timings.items()),
                                    zoom, select, win.points.render_seconds))
    assert len(win.selected_ids()) == int(((zred[:, 0] > -7) & (zred[:, 0] < -1) &
                                           (np.abs(zred[:, 1]) < 3)).sum())
    win.reset_view()
    _screenshot(win, "landscape_1e5")
    win.set_display_mode("Density")
    _screenshot(win, "landscape_density_1e5")
    win.close()


# ----------------------------------------------------------------------------- volume
def _series(n=5, box=32):
    g = np.mgrid[:box, :box, :box].astype(np.float32) - box // 2
    out = []
    for t in np.linspace(-1, 1, n):
        a = np.exp(-((g[0]) ** 2 + (g[1]) ** 2 + (g[2] + 5) ** 2) / 30.0)
        b = np.exp(-((g[0] - 2) ** 2 + (g[1] - 6 * t) ** 2 + (g[2] - 6) ** 2) / 16.0)
        out.append(a + b)
    mask = (np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2) < 10).astype(np.float32)
    return out, mask


def test_volume_window_slices_and_movie(qapp):
    from flexplugin.viewers.volume_window import VolumeWindow, chimerax_executable
    vols, mask = _series()
    win = VolumeWindow(vols, labels=["PC1 %+.1f" % t for t in np.linspace(-1, 1, 5)], mask=mask,
                       apix=3.0)
    view = win.view
    assert view.n_frames == 5 and view.movie_bar.isVisibleTo(win)
    assert (win.chimerax_action is not None) == (chimerax_executable() is not None)
    # slices follow the sliders
    view.panels[0].slider.setValue(10)
    assert view.index[0] == 10
    np.testing.assert_array_equal(view.plane(0), vols[0][10])
    np.testing.assert_array_equal(view.panels[0].image.image, vols[0][10].T)
    view.set_slice(2, 20)
    np.testing.assert_array_equal(view.plane(2), vols[0][:, :, 20])
    assert view.panels[2].mask.isVisible()
    # contour level
    view.set_level(0.5)
    assert view.level == 0.5 and abs(view.level_spin.value() - 0.5) < 1e-4
    assert view.panels[0].contour.level == 0.5
    # frames: the slider, next_frame and the movie timer
    view.frame_slider.setValue(2)
    assert view.frame == 2
    np.testing.assert_array_equal(view.volume, vols[2])
    view.next_frame()
    assert view.frame == 3
    seen = []
    view.frameChanged.connect(seen.append)
    view.play(fps=30)
    assert view.is_playing
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.01)
    view.pause()
    assert not view.is_playing and len(seen) >= 3
    assert all(abs(a - b) == 1 for a, b in zip(seen, seen[1:]))           # one frame at a time
    view.set_frame(4)
    view.set_slice(0, 16)
    view.set_level(0.35)
    view.update_surface_now()
    assert view.surface.n_faces > 100
    _screenshot(win, "volume")
    win.close()


def test_volume_window_reads_mrc(qapp, tmp_path, monkeypatch):
    from flexplugin.viewers.volume_window import VolumeWindow, read_map, write_map
    vols, mask = _series(n=1, box=24)
    path = write_map(tmp_path / "map.mrc", vols[0], apix=2.5)
    data, apix = read_map(path)
    np.testing.assert_allclose(data, vols[0])
    assert apix == pytest.approx(2.5)
    win = VolumeWindow(path)
    assert win.view.n_frames == 1 and not win.view.movie_bar.isVisibleTo(win)
    assert win.view.apix == pytest.approx(2.5) and win.paths == [str(path)]
    win.close()
    # "Open in ChimeraX" only where a chimerax executable is on PATH
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "chimerax"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ.get("PATH", ""))
    win = VolumeWindow(vols * 2)
    assert win.chimerax_action is not None
    cmd = win.chimerax_command()
    assert cmd[0] == str(exe) and "vseries true" in cmd[2] and cmd[2].count(".mrc") == 2
    win.close()


# ----------------------------------------------------------------------------- training
def _write_metrics(path, n):
    rows = [{"epoch": e, "seconds": 10.0 + e, "images_per_s": 900.0, "loss": 1.0 / e + 0.1,
             "mse": 0.8 / e + 0.05, "kld": 2.0 + 0.3 * np.log(e), "lr": 1e-4, "note": "text"}
            for e in range(1, n + 1)]
    with open(path, "w") as f:
        json.dump({"method": "cryodrgn", "epochs": rows}, f)


def test_training_window(qapp, tmp_path):
    from flexplugin.viewers.training_window import TrainingWindow
    path = tmp_path / "metrics.json"
    _write_metrics(path, 8)
    win = TrainingWindow(str(tmp_path))
    assert win.plotted_metrics() == ["loss", "mse", "kld", "lr"]
    x, y = win.curves["loss"].getData()
    np.testing.assert_allclose(x, np.arange(1, 9))
    np.testing.assert_allclose(y, 1.0 / np.arange(1, 9) + 0.1)
    assert "cryodrgn" in win.summary.text() and "8 epochs" in win.summary.text()
    win.set_log_scale(True)
    assert win.log_box.isChecked() and win.plots["loss"].ctrl.logYCheck.isChecked()
    _write_metrics(path, 12)
    assert win.reload() == 12
    assert len(win.curves["mse"].getData()[0]) == 12
    assert win.plots["loss"].ctrl.logYCheck.isChecked()                   # kept over reload
    _screenshot(win, "training")
    os.remove(path)
    assert win.reload() == 0 and "No such file" in win.summary.text()
    win.close()


# ----------------------------------------------------------------------------- boundary
def test_viewers_do_not_import_torch():
    # The viewers run in Scipion's Python (DESIGN: the Scipion side never imports torch).
    code = ("import sys; import flexplugin.viewers, flexplugin.viewers.landscape_window, "
            "flexplugin.viewers.volume_window, flexplugin.viewers.training_window, "
            "flexplugin.viewers.serve_client, flexplugin.viewers.app; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; "
            "assert not bad, bad")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ----------------------------------------------------------------------------- labels
class _Obj:
    """A stand-in for the Scipion objects the app reads (particles, classes, volumes, runs)."""

    def __init__(self, **attrs):
        self.__dict__.update(attrs)

    def __getattr__(self, name):                     # getFoo() -> self.foo
        if name.startswith("get") and name[3:4].isupper():
            key = name[3].lower() + name[4:]
            if key in self.__dict__:
                return lambda: self.__dict__[key]
        raise AttributeError(name)


class _Set(list):
    def iterItems(self, orderBy=None):
        return iter(self)

    def hasCTF(self):
        return False


def _landscape_run(tmp_path, n=120, zdim=10, k=3, scale=1e-3, reduction="pca"):
    """A landscape analysis run as the app sees it: particles with z (zdim) and zred (tiny values,
    where an SI prefix would show), k classes (ids 1..k), and its extra/landscape/analysis.json."""
    rng = np.random.default_rng(5)
    label = np.arange(n) % k
    z = rng.normal(size=(n, zdim)) + 3 * label[:, None]
    zred = scale * np.column_stack([label + 0.1 * rng.normal(size=n), rng.normal(size=n)])
    particles = _Set(_Obj(objId=i + 1, zFlex=list(z[i]), zRed=zred[i], CTF=None) for i in range(n))
    classes = _Set(_Obj(objId=c + 1, size=int((label == c).sum()),
                        iterItems=lambda c=c: iter([p for p, lab in zip(particles, label) if lab == c]))
                   for c in range(k))
    folder = tmp_path / "Runs" / "000002_ProtFlexLandscape" / "extra" / "landscape"
    folder.mkdir(parents=True)
    (folder / "analysis.json").write_text(json.dumps({"zred": reduction, "pca_variance": [0.613, 0.2, 0.1]}))
    prot = _Obj(outputParticles=particles, outputClasses=classes, workingDir="Runs/000002_ProtFlexLandscape",
                runName="flexplugin - landscape analysis")
    return _Obj(path=str(tmp_path)), prot, label


def test_landscape_window_axes_classes_and_z_panel(qapp, tmp_path):
    from flexplugin.viewers import app
    from flexplugin.viewers.landscape_window import LandscapeWindow
    project, prot, label = _landscape_run(tmp_path)
    analysis = app.read_analysis(app.landscape_folder(project, prot))
    ids, z, zred, axis, attributes = app.landscape_data(prot.outputParticles, prot, analysis)
    assert axis == ["PCA 1 (61% of variance)", "PCA 2 (20% of variance)"]
    np.testing.assert_array_equal(attributes["class"], label + 1)          # classes 1..K, as the class maps
    win = LandscapeWindow(zred, z=z, ids=ids, attributes=attributes, axis_labels=axis, color_by="class")
    win.show()
    qapp.processEvents()
    for i, (side, name) in enumerate((("bottom", axis[0]), ("left", axis[1]))):
        ax = win.plot.getAxis(side)
        assert ax.labelText == name and name.startswith("PCA %d (" % (i + 1)) and name.endswith("% of variance)")
        assert not ax.autoSIPrefix and "(x" not in ax.labelString()     # zred ~ 1e-3: no "(x0.001)"
    legend = [label_item.text for _, label_item in win.legend.items]
    assert legend == ["class %d  (40)" % c for c in (1, 2, 3)]
    win.pick_index(0)
    panel = win.pick_label.text()
    assert panel.count("<b>z</b>") == 1 and "(10 values)" in panel
    assert all("z%d&nbsp;=&nbsp;%.3g" % (k + 1, v) in panel for k, v in enumerate(z[0]))   # z1..z10
    assert "<b>z1</b>" not in panel and "<b>z8</b>" not in panel          # z shown once
    assert "<b>PCA 1</b>" in panel and "<b>class</b>" in panel
    for _ in range(3):
        qapp.processEvents()                               # the panel takes the height of its text
    assert win.pick_scroll.height() >= win.pick_label.heightForWidth(win.pick_scroll.width())
    _screenshot(win, "landscape_labels")
    win.close()
    # UMAP axes; particles without zred: the principal components of z, with their variance
    (tmp_path / "u").mkdir()
    project, prot, _ = _landscape_run(tmp_path / "u", reduction="umap")
    analysis = app.read_analysis(app.landscape_folder(project, prot))
    assert app.landscape_data(prot.outputParticles, prot, analysis)[3] == ["UMAP 1", "UMAP 2"]
    for p in prot.outputParticles:
        p.zRed = np.zeros(0)
    axis = app.landscape_data(prot.outputParticles, prot)[3]
    assert len(axis) == 3 and all(a.startswith("PCA %d (" % (i + 1)) and a.endswith("% of variance)")
                                  for i, a in enumerate(axis))


def _map_files(folder, n, box=24):
    from flexplugin.viewers.volume_window import write_map
    vols, _ = _series(n=n, box=box)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_map(folder / ("vol_%03d.mrc" % i), v, apix=2.0) for i, v in enumerate(vols)]


def _open_maps(monkeypatch, project, prot, output):
    """What "Analyze Results" runs for a maps output (``app volumes --project --protocol
    --output``): the window it would show."""
    from flexplugin.viewers import app
    shown = []
    monkeypatch.setattr(app, "load_project", lambda path: _Obj(path=project.path, getProtocol=lambda i: prot))
    monkeypatch.setattr(app, "_show", lambda qt, window: shown.append(window) or 0)
    assert app.main(["volumes", "--project", project.path, "--protocol", "2", "--output", output]) == 0
    return shown[0]


def test_class_maps_window_says_class_and_particles(qapp, tmp_path, monkeypatch):
    project, prot, label = _landscape_run(tmp_path, n=10, k=4)
    files = _map_files(tmp_path / "Runs" / "000002_ProtFlexLandscape" / "extra" / "landscape" / "kmeans", 4)
    for cls, path in zip(prot.outputClasses, files):
        cls.representative = _Obj(fileName=os.path.relpath(path, tmp_path), samplingRate=2.0)
    win = _open_maps(monkeypatch, project, prot, "outputClasses")
    sizes = [3, 3, 2, 2]
    assert win.windowTitle() == "flexplugin - landscape analysis \u2014 class maps"
    assert win.windowTitle().count("flexplugin") == 1
    for k in range(4):
        win.view.set_frame(k)
        text = "class %d: %d particles" % (k + 1, sizes[k])
        assert win.view.frame_label.text() == "%s   (%d / 4)" % (text, k + 1)
        assert win.statusBar().currentMessage() == "%s  \u00b7  vol_%03d.mrc  \u00b7  map %d of 4" % (
            text, k, k + 1)
    win.view.set_frame(1)
    win.view.update_surface_now()
    _screenshot(win, "class_maps")
    win.close()


def test_traversal_window_says_pc_value_and_percentile(qapp, tmp_path, monkeypatch):
    from flexplugin.viewers import app
    project, prot, _ = _landscape_run(tmp_path, n=10)
    folder = tmp_path / "Runs" / "000002_ProtFlexLandscape" / "extra" / "landscape"
    pc1 = np.linspace(-2.0, 2.0, 1001)                  # the particles' PC1 coordinates
    lo, hi = np.percentile(pc1, [5, 95])
    np.save(folder / "pca.npy", np.column_stack([pc1, -pc1]).astype(np.float32))
    (folder / "analysis.json").write_text(json.dumps({
        "zred": "umap", "pca_variance": [0.5, 0.3], "pc_traversals": {"pc1": [lo, hi]},
        "parameters": {"percentiles": [5.0, 95.0], "traversal_points": 5}}))
    files = _map_files(folder / "pc1", 5)
    prot.outputTraversalPC1 = _Set(_Obj(objId=i + 1, fileName=f, samplingRate=2.0) for i, f in enumerate(files))
    win = _open_maps(monkeypatch, project, prot, "outputTraversalPC1")
    assert win.windowTitle() == "flexplugin - landscape analysis \u2014 maps along PC1"
    expected = ["PC1 = -1.8 (5th percentile)", "PC1 = -0.9 (28th percentile)", "PC1 = 0 (50th percentile)",
                "PC1 = 0.9 (73rd percentile)", "PC1 = 1.8 (95th percentile)"]
    assert win.view.labels == expected
    for k in range(5):
        win.view.set_frame(k)
        assert win.view.frame_label.text().startswith(expected[k] + "   (")
        assert win.statusBar().currentMessage().startswith(expected[k])
    win.view.set_frame(2)
    win.view.update_surface_now()
    _screenshot(win, "traversal")
    win.close()
    # a path traversal: the particle of each map; without an analysis, None (the "outputX k" labels stay)
    assert app.traversal_labels({"path": {"indices": [3, 0]}}, "path", 2, np.array([11, 12, 13, 14])) == \
        ["path: particle 14", "path: particle 11"]
    assert app.traversal_labels(None, "pc1", 5) is None
    assert [app._ordinal(v) for v in (1, 2, 3, 4, 11, 12, 13, 21, 22, 50, 95)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "50th", "95th"]


def test_segments_window_axis_names(qapp):
    pytest.importorskip("matplotlib")
    from flexplugin.viewers.segments_window import SegmentsWindow
    rng = np.random.default_rng(4)
    n = 300
    s = rng.uniform(-1, 1, n)
    z = 1e-3 * np.column_stack([2 * s, 0.3 * rng.normal(size=(n, 2))])    # tiny latent values
    coords = np.column_stack([np.arange(20) * 3.8, np.zeros(20), np.zeros(20)])
    angle = np.column_stack([np.abs(rng.normal(size=n)), 20 + 15 * s])
    translation = 0.3 * rng.normal(size=(n, 2, 3))
    win = SegmentsWindow(coords, np.r_[np.ones(10, int), np.full(10, 2)], np.arange(1, 21), angle,
                         translation, z)
    ax = win.plots["angle"].getAxis("bottom")
    assert ax.labelText.startswith("PC 1 of z (") and ax.labelText.endswith("% of variance)")
    assert "(x" not in ax.labelString() and not win.plots["translation"].getAxis("left").autoSIPrefix
    win.close()


def test_saved_landscape_plot_numbers_classes_from_1(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from flexplugin.engine.analysis import landscape
    assert landscape.axis_labels(False, [0.613, 0.2], 3) == ["PCA 1 (61% of variance)",
                                                            "PCA 2 (20% of variance)", "PCA 3"]
    assert landscape.axis_labels(True, [0.6], 2) == ["UMAP 1", "UMAP 2"]
    figures = []
    monkeypatch.setattr(landscape, "_savefig", lambda fig, path: (figures.append(fig),
                                                                  fig.savefig(path, dpi=60)))
    rng = np.random.default_rng(6)
    labels = np.repeat([0, 1, 2], 50)
    zred = 1e-3 * (rng.normal(size=(150, 2)) + 4 * labels[:, None])
    centres = np.array([zred[labels == c].mean(0) for c in range(3)])
    landscape.plot_landscape(str(tmp_path / "landscape.png"), zred, labels, centres, title="PCA",
                             axis_names=landscape.axis_labels(False, [0.613, 0.2], 2))
    ax = figures[0].axes[1]                                      # [density, classes, colour bar]
    assert [t.get_text() for t in ax.texts] == ["1", "2", "3"] and ax.get_title() == "k-means classes 1\u20133"
    assert ax.get_xlabel() == "PCA 1 (61% of variance)" and ax.get_ylabel() == "PCA 2 (20% of variance)"
    landscape.plot_cluster_sizes(str(tmp_path / "sizes.png"), labels, 3)
    ax = figures[1].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
    os.makedirs(ARTIFACTS, exist_ok=True)
    figures[0].savefig(os.path.join(ARTIFACTS, "viewer_saved_landscape_plot.png"), dpi=60)
