"""Test bootstrap: a private Scipion configuration (set before anything imports pyworkflow),
and shared fixtures (simulated data sets, made once per session)."""
import os
import sys
import tempfile

import pytest

from cli_helpers import simulate_hinge

_ROOT = tempfile.mkdtemp(prefix="flexplugin-tests-")
_HOSTS = os.path.join(_ROOT, "hosts.conf")
with open(_HOSTS, "w") as _f:
    _f.write("[localhost]\nPARALLEL_COMMAND = mpirun -np %_(JOB_NODES)d --map-by node %_(COMMAND)s\n")
for _k, _v in {
    "SCIPION_HOME": _ROOT,
    "SCIPION_USER_DATA": os.path.join(_ROOT, "user-data"),
    "SCIPION_TESTS": os.path.join(_ROOT, "tests-data"),
    "SCIPION_HOSTS": _HOSTS,
    "SCIPION_DOMAIN": "pwem",
    "SCIPION_PYTHON": sys.executable,
    "SCIPION_NOTIFY": "False",
    "SCIPION_TEST_NOSYNC": "True",
    "FLEXPLUGIN_ENV_ACTIVATION": "",
}.items():
    os.environ.setdefault(_k, _v)
# The engine subprocesses of the tests run from this interpreter's environment.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture(scope="session")
def homogeneous_set(tmp_path_factory):
    """1500 particles, D=32, SNR 0.1, one state, with CTF and shifts."""
    return simulate_hinge(tmp_path_factory.mktemp("homogeneous"), snr=0.1)


@pytest.fixture(scope="session")
def motion_set(tmp_path_factory):
    """1500 particles, D=32, SNR 1: five states of the built-in hinge (0 to 60 degrees)."""
    return simulate_hinge(tmp_path_factory.mktemp("motion"), seed=4, states=5)
