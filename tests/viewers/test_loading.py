"""The window program shows a "Loading ..." window (busy cursor, status line) before it reads
anything, the landscape's map decoder loads its model while the window opens, and the program
imports neither pyworkflow nor the plotting modules before its first window (offscreen)."""
import os
import subprocess
import sys

import numpy as np
import pytest

QtWidgets = pytest.importorskip("PyQt5.QtWidgets")
pytest.importorskip("pyqtgraph")

from viewer_helpers import Obj, landscape_run, write_map_files  # noqa: E402


def _state(app):
    """What the user sees now: the "Loading ..." window's title and status line (None without
    one) and whether the cursor is the busy one."""
    from PyQt5 import QtCore
    loading = app._loading
    cursor = QtWidgets.QApplication.overrideCursor()
    return dict(title=loading.windowTitle() if loading is not None and loading.isVisible() else None,
                status=loading.status.text() if loading is not None else None,
                busy=cursor is not None and cursor.shape() == QtCore.Qt.WaitCursor)


def test_loading_window_before_the_content(qapp, tmp_path, monkeypatch):
    from flexplugin.viewers import app
    project, prot, _ = landscape_run(tmp_path, n=10, k=2)
    files = write_map_files(tmp_path / "Runs" / "000002_ProtFlexLandscape" / "extra" / "landscape" / "kmeans", 2)
    for cls, path in zip(prot.outputClasses, files):
        cls.representative = Obj(fileName=os.path.relpath(path, tmp_path), samplingRate=2.0)
    seen = []

    def load_project(path):
        seen.append(("project", _state(app)))
        return Obj(path=project.path, getProtocol=lambda i: prot)

    def show(qt, window):
        seen.append(("content", _state(app)))
        window.show()
        app._loaded()
        seen.append(("shown", _state(app)))
        window.close()
        return 0

    monkeypatch.setattr(app, "load_project", load_project)
    monkeypatch.setattr(app, "_show", show)
    assert app.main(["volumes", "--project", project.path, "--protocol", "2", "--output", "outputClasses"]) == 0
    assert [what for what, _ in seen] == ["project", "content", "shown"]
    loading = dict(title="Loading the maps \u2014 flexplugin", status="Reading the project\u2026", busy=True)
    assert seen[0][1] == loading                            # up before the project is read
    assert seen[1][1] == dict(loading, status="Reading 2 maps\u2026")
    assert seen[2][1] == dict(title=None, status=None, busy=False)    # gone once the content is shown
    assert QtWidgets.QApplication.overrideCursor() is None and app._loading is None

    # a failure closes it too (and gives the cursor back)
    with pytest.raises(SystemExit, match="train-dir"):
        app.main(["segments", "--structure", "model.pdb"])
    assert QtWidgets.QApplication.overrideCursor() is None and app._loading is None


def test_landscape_window_opens_while_the_decoder_starts(qapp, tmp_path, monkeypatch, fake_server):
    from flexplugin.viewers import app
    from flexplugin.viewers.serve_client import DecoderClient
    script, make_map = fake_server
    project, prot, _ = landscape_run(tmp_path, n=12, zdim=4)
    particles = prot.outputParticles
    particles.getSize = lambda: len(particles)
    particles.getSamplingRate, particles.getXDim = (lambda: 4.0), (lambda: 24)
    particles.getFlexInfo = lambda: Obj(getAttr=lambda name: 24)
    clients, seen = [], {}

    def decoder_for(flexSet, wait=True):
        assert flexSet is particles and not wait
        clients.append(DecoderClient([sys.executable, script, "--delay", "1"], wait=wait))
        return clients[-1]

    def show(qt, window):
        seen.update(_state(app), decoder=window.decoder, ready=clients[0].ready)
        window.pick_index(3)                     # a click: the map comes once the server is ready
        assert window.wait_for_decode(60)
        seen["map"] = window.last_map
        window.close()
        return 0

    monkeypatch.setattr(app, "load_project", lambda path: Obj(path=project.path, getProtocol=lambda i: prot))
    monkeypatch.setattr(app, "decoder_for", decoder_for)
    monkeypatch.setattr(app, "_show", show)
    assert app.main(["landscape", "--project", project.path, "--protocol", "2", "--output", "outputParticles"]) == 0
    assert seen["title"] == "Loading the landscape \u2014 flexplugin" and seen["busy"]
    assert seen["status"] == "Drawing the landscape\u2026"
    assert seen["decoder"] is clients[0] and not seen["ready"]          # the window did not wait for it
    z = np.asarray(particles[3].zFlex, dtype=np.float32)
    np.testing.assert_allclose(seen["map"], make_map(z, 24), rtol=1e-6)
    assert not clients[0].alive                                          # closed with the window


def test_decoder_client_without_waiting(fake_server):
    from flexplugin.viewers.serve_client import DecoderClient, DecoderError
    script, make_map = fake_server
    dec = DecoderClient([sys.executable, script, "--delay", "0.5"], wait=False)
    assert not dec.ready and dec.zdim is None
    z = np.array([0.5, -1.0, 2.0, 0.0])
    np.testing.assert_array_equal(dec.decode(z)[0], make_map(z.astype(np.float32), 24))
    assert dec.ready and (dec.method, dec.zdim, dec.box, dec.apix) == ("fake", 4, 24, 4.0)
    dec.close()
    slow = DecoderClient([sys.executable, script, "--delay", "60"], wait=False)
    slow.close()                                                         # still loading: stopped at once
    assert slow._proc.poll() is not None and not slow.alive
    dead = DecoderClient([sys.executable, script, "--die"], wait=False)
    for _ in range(2):
        with pytest.raises(DecoderError, match="no such checkpoint"):
            dead.decode(z)


def test_program_imports_little_before_its_first_window():
    # python -m flexplugin.viewers.app imports the package, then the program: neither brings in
    # pyworkflow, pwem or the plotting modules; Scipion still finds the viewer classes
    code = ("import inspect, sys, flexplugin.viewers.app; "
            "heavy = [m for m in ('pyworkflow', 'pwem', 'matplotlib', 'pyqtgraph', 'scipy', 'torch') "
            "if m in sys.modules]; assert not heavy, heavy; "
            "import flexplugin.viewers as v; "
            "names = [n for n, c in inspect.getmembers(v, inspect.isclass)]; print(' '.join(names))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["FlexCryoSphereViewer", "FlexLandscapeProtocolViewer", "FlexLandscapeViewer",
                                   "FlexTrainingViewer", "FlexVolumesViewer"]
