"""The landscape window (offscreen): selections, colours, a click decoding through the fake
decoder server (fake_serve.py), 1e5 points, axis names and the picked-particle panel.
Screenshots: tests/artifacts/viewer_landscape_*.png."""
import os
import sys
import time

import numpy as np
import pytest

QtWidgets = pytest.importorskip("PyQt5.QtWidgets")
pytest.importorskip("pyqtgraph")

from fake_serve import make_map  # noqa: E402
from flexplugin.viewers.serve_client import DecoderClient  # noqa: E402
from viewer_helpers import grid_landscape, landscape_run, screenshot  # noqa: E402


def test_landscape_selections_and_subset(qapp, tmp_path):
    from flexplugin.viewers.landscape_window import LandscapeWindow
    zred, ids = grid_landscape()
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
    screenshot(win, "landscape_selection")
    win.close()


def test_landscape_color_by(qapp):
    from flexplugin.viewers.colors import PALETTE
    from flexplugin.viewers.landscape_window import NO_COLOR, LandscapeWindow
    rng = np.random.default_rng(1)
    zred, ids = grid_landscape()
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
        screenshot(win, "landscape_click")
        win.close()


def test_point_raster_draws_later_points_on_top():
    from flexplugin.viewers.landscape_plot import rasterize_points
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
    screenshot(win, "landscape_1e5")
    win.set_display_mode("Density")
    screenshot(win, "landscape_density_1e5")
    win.close()


def test_landscape_window_axes_classes_and_z_panel(qapp, tmp_path):
    from flexplugin.viewers import app
    from flexplugin.viewers.landscape_window import LandscapeWindow
    project, prot, label = landscape_run(tmp_path)
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
    screenshot(win, "landscape_labels")
    win.close()
    # UMAP axes; particles without zred: the principal components of z, with their variance
    (tmp_path / "u").mkdir()
    project, prot, _ = landscape_run(tmp_path / "u", reduction="umap")
    analysis = app.read_analysis(app.landscape_folder(project, prot))
    assert app.landscape_data(prot.outputParticles, prot, analysis)[3] == ["UMAP 1", "UMAP 2"]
    for p in prot.outputParticles:
        p.zRed = np.zeros(0)
    axis = app.landscape_data(prot.outputParticles, prot)[3]
    assert len(axis) == 3 and all(a.startswith("PCA %d (" % (i + 1)) and a.endswith("% of variance)")
                                  for i, a in enumerate(axis))


# ----------------------------------------------------------------------------- the map shown: save, ChimeraX
class _Decoder:
    """The fake server's maps, decoded in this process."""

    def decode(self, zs):
        return [make_map(np.asarray(z, dtype=np.float32), 24) for z in zs]


def _map_window(n=50):
    from flexplugin.viewers.landscape_window import LandscapeWindow
    rng = np.random.default_rng(7)
    z = rng.normal(size=(n, 4)).astype(np.float32)
    return LandscapeWindow(z[:, :2], z=z, ids=np.arange(n) + 101, decoder=_Decoder(), apix=3.25), z


def _fake_chimerax(folder):
    """A ``chimerax`` program in ``folder`` that writes its arguments, one a line, to args.txt."""
    folder.mkdir()
    exe = folder / "chimerax"
    exe.write_text("#!/bin/sh\nprintf '%%s\\n' \"$@\" > '%s'\n" % (folder / "args.txt"))
    exe.chmod(0o755)
    return exe


def test_landscape_saves_the_map_shown(qapp, tmp_path, monkeypatch):
    from flexplugin.engine.io.mrc import read_mrc
    monkeypatch.setenv("PATH", str(tmp_path))                      # no ChimeraX
    monkeypatch.delenv("CHIMERA_HOME", raising=False)
    win, z = _map_window()
    side = win.side
    menu = [a.text() for a in win.menuBar().actions()[0].menu().actions()]
    assert "Save map\u2026" in menu and "Open in ChimeraX" in menu
    assert not side.save_map_action.isEnabled() and "Click on the landscape first" in side.save_map_action.toolTip()
    assert not side.chimerax_action.isEnabled() and "ChimeraX was not found" in side.chimerax_action.toolTip()
    win.pick_index(12)
    assert win.wait_for_decode(30)
    np.testing.assert_array_equal(win.volume_view.volume, make_map(z[12], 24))
    assert side.save_map_action.isEnabled() and not side.chimerax_action.isEnabled()
    asked = []
    out = tmp_path / "saved.mrc"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        lambda parent, caption, name, filters: asked.append(name) or (str(out), ""))
    side.save_map_action.trigger()                                  # File > Save map...
    assert asked == ["particle_113.mrc"]
    data, apix = read_mrc(out)
    np.testing.assert_array_equal(data, win.volume_view.volume)
    assert apix == pytest.approx(3.25)
    assert win.statusBar().currentMessage() == "Saved the map to %s" % out
    warned = []                                                     # a folder that is not there: said, not raised
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda parent, title, text: warned.append(text))
    out = tmp_path / "no such folder" / "saved.mrc"
    side.save_map_action.trigger()
    assert len(warned) == 1 and "could not be saved" in warned[0] and str(out) in warned[0]
    win.close()


def test_landscape_opens_the_map_shown_in_chimerax(qapp, tmp_path, monkeypatch):
    from flexplugin.engine.io.mrc import read_mrc
    from flexplugin.viewers.chimerax import chimerax_executable
    exe = _fake_chimerax(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    win, z = _map_window()
    side = win.side
    assert side.chimerax == str(exe) and not side.chimerax_action.isEnabled()     # no map yet
    win.pick_index(3)
    assert win.wait_for_decode(30) and side.chimerax_action.isEnabled()
    side.chimerax_action.trigger()                                  # File > Open in ChimeraX
    (process,) = side.chimerax_maps.processes
    assert process.wait(30) == 0
    args = (tmp_path / "bin" / "args.txt").read_text().splitlines()
    assert args[0] == "--cmd" and args[1].startswith('open "') and "; volume #1 level " in args[1]
    path = args[1].split('"')[1]
    assert os.path.basename(path) == "particle_104.mrc"
    data, apix = read_mrc(path)
    np.testing.assert_array_equal(data, make_map(z[3], 24))
    assert apix == pytest.approx(3.25)
    win.close()
    assert not os.path.exists(path)                                 # ChimeraX has ended: files removed
    # Scipion's ChimeraX (CHIMERA_HOME) where none is on PATH
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "chimerax-home").mkdir()
    _fake_chimerax(tmp_path / "chimerax-home" / "bin").rename(tmp_path / "chimerax-home" / "bin" / "ChimeraX")
    monkeypatch.setenv("CHIMERA_HOME", str(tmp_path / "chimerax-home"))
    assert chimerax_executable() == str(tmp_path / "chimerax-home" / "bin" / "ChimeraX")
