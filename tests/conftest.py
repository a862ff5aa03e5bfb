"""Test bootstrap: a private Scipion configuration (set before anything imports pyworkflow),
and shared fixtures (simulated data sets, made once per session)."""
import os
import sys
import tempfile

import pytest

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


def run_cli(*args):
    """Run the engine's command line in-process; returns its exit status."""
    from flexplugin.engine.cli import main
    return main([str(a) for a in args])


@pytest.fixture(scope="session")
def homogeneous_set(tmp_path_factory):
    """1500 particles, D=32, SNR 0.1, one state, with CTF and shifts."""
    out = tmp_path_factory.mktemp("homogeneous")
    assert run_cli("simulate", "--out", out, "--n", 1500, "--box", 32, "--apix", 3.0, "--snr", 0.1,
                   "--seed", 3, "--states", 1) == 0
    return out


def simulate_three_volumes(out, n, box=32, apix=3.0, snr=1.0, seed=5):
    """Particles of three discrete maps of the built-in object (whole, arm removed, arm swung by
    60 degrees) with CTF, shifts and known poses; returns the simulation folder."""
    from flexplugin.engine.io import write_mrc
    from flexplugin.engine.simulate import builtin_object, hinge_states, render_volume
    coords, weights, moving, hinge, axis = builtin_object()
    coords, hinge = coords * box, hinge * box
    swung = hinge_states(coords, moving, hinge, axis, 60.0, [1.0])[0]
    maps = [render_volume(coords, weights, 0.025 * box, box),
            render_volume(coords[~moving], weights[~moving], 0.025 * box, box),
            render_volume(swung, weights, 0.025 * box, box)]
    paths = []
    for i, v in enumerate(maps):
        paths.append(out / ("vol_%d.mrc" % i))
        write_mrc(paths[-1], v.numpy(), apix)
    data = out / "data"
    assert run_cli("simulate", "--out", data, "--n", n, "--box", box, "--apix", apix,
                   "--snr", snr, "--seed", seed, "--volumes", *paths) == 0
    return data


@pytest.fixture(scope="session")
def motion_set(tmp_path_factory):
    """1500 particles, D=32, SNR 1: five states of the built-in hinge (0 to 60 degrees)."""
    out = tmp_path_factory.mktemp("motion")
    assert run_cli("simulate", "--out", out, "--n", 1500, "--box", 32, "--apix", 3.0, "--snr", 1.0,
                   "--seed", 4, "--states", 5) == 0
    return out

