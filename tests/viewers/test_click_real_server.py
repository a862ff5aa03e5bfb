"""The landscape window's click path against the engine's own ``flexplugin serve`` (offscreen Qt;
the engine runs as subprocesses: this module does not import torch)."""
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
QtWidgets = pytest.importorskip("PyQt5.QtWidgets")
pytest.importorskip("pyqtgraph")

from flexplugin.viewers.serve_client import DecoderClient  # noqa: E402


@pytest.fixture(scope="module")
def qapp():
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


def _engine(*args, **kw):
    """The engine's command line in a subprocess (this module does not import torch)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "flexplugin.engine.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600, **kw)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_landscape_click_shows_the_map_of_flexplugin_decode(qapp, tmp_path):
    """The click path with the real engine: a trained cryoDRGN model behind ``flexplugin serve``;
    the map the window shows for the clicked particle is the one ``flexplugin decode`` writes for
    that particle's z."""
    from flexplugin.engine.io.mrc import read_mrc
    from flexplugin.viewers.landscape_window import LandscapeWindow
    _engine("simulate", "--out", tmp_path / "data", "--n", 200, "--box", 32, "--apix", 3.0,
            "--snr", 1.0, "--seed", 4, "--states", 3)
    model = tmp_path / "model"
    _engine("train", "cryodrgn", "--particles", tmp_path / "data" / "particles.star", "--out", model,
            "--epochs", 1, "--zdim", 2, "--enc-dim", 32, "--enc-layers", 1, "--dec-dim", 32,
            "--dec-layers", 1, "--lr", 1e-3, "--batch-size", 16, "--threads", 1, "--log-every", 0)
    z = np.load(model / "z.npy")
    i = 57
    _engine("decode", "--model", model, "--out", tmp_path / "dec",
            "--z=" + ",".join("%r" % float(v) for v in z[i]))
    ref, apix = read_mrc(str(tmp_path / "dec" / "vol_000.mrc"))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with DecoderClient([sys.executable, "-m", "flexplugin.engine.cli", "serve", "--model", str(model),
                        "--threads", "1"], env=env) as dec:
        win = LandscapeWindow(z, z=z, ids=np.arange(1, len(z) + 1), decoder=dec,
                              axis_labels=["z 1", "z 2"])
        assert win.click_at(z[i, 0], z[i, 1]) == i + 1
        assert win.last_map.shape == (32, 32, 32) and apix == 3.0
        np.testing.assert_allclose(win.last_map, ref, atol=1e-5 * np.abs(ref).max())
        np.testing.assert_array_equal(win.volume_view.volume, win.last_map)
        print("decode on click (D=32, real server): %.3f s" % win.last_decode_seconds)
        win.close()
