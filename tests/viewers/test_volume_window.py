"""The volume window (offscreen): slices, contour, movie, MRC files, ChimeraX; the maps of a
landscape analysis as "Analyze Results" opens them (class maps, traversals) with their labels.
Screenshots: tests/artifacts/viewer_volume.png, viewer_class_maps.png, viewer_traversal.png."""
import json
import os
import time

import numpy as np
import pytest

QtWidgets = pytest.importorskip("PyQt5.QtWidgets")
pytest.importorskip("pyqtgraph")

from viewer_helpers import Obj, FakeSet, landscape_run, map_series, screenshot, write_map_files  # noqa: E402


def test_volume_window_slices_and_movie(qapp):
    from flexplugin.viewers.volume_window import VolumeWindow, chimerax_executable
    vols, mask = map_series()
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
    screenshot(win, "volume")
    win.close()


def test_volume_window_reads_mrc(qapp, tmp_path, monkeypatch):
    from flexplugin.viewers.volume_window import VolumeWindow, read_map, write_map
    vols, mask = map_series(n=1, box=24)
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


def _open_maps(monkeypatch, project, prot, output):
    """What "Analyze Results" runs for a maps output (``app volumes --project --protocol
    --output``): the window it would show."""
    from flexplugin.viewers import app
    shown = []
    monkeypatch.setattr(app, "load_project", lambda path: Obj(path=project.path, getProtocol=lambda i: prot))
    monkeypatch.setattr(app, "_show", lambda qt, window: shown.append(window) or 0)
    assert app.main(["volumes", "--project", project.path, "--protocol", "2", "--output", output]) == 0
    return shown[0]


def test_class_maps_window_says_class_and_particles(qapp, tmp_path, monkeypatch):
    project, prot, label = landscape_run(tmp_path, n=10, k=4)
    files = write_map_files(tmp_path / "Runs" / "000002_ProtFlexLandscape" / "extra" / "landscape" / "kmeans", 4)
    for cls, path in zip(prot.outputClasses, files):
        cls.representative = Obj(fileName=os.path.relpath(path, tmp_path), samplingRate=2.0)
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
    screenshot(win, "class_maps")
    win.close()


def test_traversal_window_says_pc_value_and_percentile(qapp, tmp_path, monkeypatch):
    from flexplugin.viewers import app
    project, prot, _ = landscape_run(tmp_path, n=10)
    folder = tmp_path / "Runs" / "000002_ProtFlexLandscape" / "extra" / "landscape"
    pc1 = np.linspace(-2.0, 2.0, 1001)                  # the particles' PC1 coordinates
    lo, hi = np.percentile(pc1, [5, 95])
    np.save(folder / "pca.npy", np.column_stack([pc1, -pc1]).astype(np.float32))
    (folder / "analysis.json").write_text(json.dumps({
        "zred": "umap", "pca_variance": [0.5, 0.3], "pc_traversals": {"pc1": [lo, hi]},
        "parameters": {"percentiles": [5.0, 95.0], "traversal_points": 5}}))
    files = write_map_files(folder / "pc1", 5)
    prot.outputTraversalPC1 = FakeSet(Obj(objId=i + 1, fileName=f, samplingRate=2.0) for i, f in enumerate(files))
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
    screenshot(win, "traversal")
    win.close()
    # a path traversal: the particle of each map; without an analysis, None (the "outputX k" labels stay)
    assert app.traversal_labels({"path": {"indices": [3, 0]}}, "path", 2, np.array([11, 12, 13, 14])) == \
        ["path: particle 14", "path: particle 11"]
    assert app.traversal_labels(None, "pc1", 5) is None
    assert [app._ordinal(v) for v in (1, 2, 3, 4, 11, 12, 13, 21, 22, 50, 95)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "50th", "95th"]
