"""The training window (offscreen), the viewers' boundary (no torch) and the landscape plots the
analysis saves. Screenshots: tests/artifacts/viewer_training.png, viewer_saved_landscape_plot.png."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

QtWidgets = pytest.importorskip("PyQt5.QtWidgets")
pytest.importorskip("pyqtgraph")

from viewer_helpers import ARTIFACTS, screenshot  # noqa: E402


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
    screenshot(win, "training")
    os.remove(path)
    assert win.reload() == 0 and "No such file" in win.summary.text()
    win.close()


# ----------------------------------------------------------------------------- boundary
def test_viewers_do_not_import_torch():
    # The viewers run in Scipion's Python (DESIGN: the Scipion side never imports torch).
    code = ("import sys; import flexplugin.viewers, flexplugin.viewers.landscape_window, "
            "flexplugin.viewers.volume_window, flexplugin.viewers.training_window, "
            "flexplugin.viewers.serve_client, flexplugin.viewers.app, flexplugin.viewers.plot_window; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; "
            "assert not bad, bad")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


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
