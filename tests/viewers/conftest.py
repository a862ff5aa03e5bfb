"""Fixtures of the viewer tests: the Qt application (offscreen) and a fake decoder server."""
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def qapp():
    from PyQt5 import QtWidgets

    from viewer_helpers import ARTIFACTS
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    os.makedirs(ARTIFACTS, exist_ok=True)
    yield app


@pytest.fixture(scope="session")
def fake_server():
    """(path of the fake server script, its make_map function): fake_serve.py."""
    import fake_serve
    return fake_serve.__file__, fake_serve.make_map
