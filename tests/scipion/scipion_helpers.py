"""Helpers of the Scipion protocol tests: real pyworkflow projects (in the temporary
SCIPION_USER_DATA set by tests/conftest.py) and a launcher that fails with the run's log."""
import os

import numpy as np
import pytest

from flexplugin.workflows import new_project  # noqa: F401  (a fresh project; the tests' cwd moves into it)

SIM = dict(numParticles=1500, boxSize=32, samplingRate=3.0, snr=0.1, seed=3, numStates=1)
# As in tests/engine/test_reconstruct.py: D=32, 1500 particles, SNR 0.1 -> FSC=0.5 with the
# ground truth at ~9-10 Å; broken conventions give far worse.
GT_FSC05_MAX_A = 11.0


def launch(project, protClass, inputs=None, **kwargs):
    """Run a protocol to the end; ``inputs``: {param: (protocol, output name)}."""
    prot = project.newProtocol(protClass, **kwargs)
    for name, (src, output) in (inputs or {}).items():
        getattr(prot, name).set(src)
        getattr(prot, name).setExtended(output)
    errors = prot.validate()
    assert not errors, errors
    project.launchProtocol(prot, wait=True)
    if not prot.isFinished():
        logs = [f for f in prot.getLogPaths() if os.path.exists(f)]
        tail = "".join(open(f, errors="replace").read()[-4000:] for f in logs)
        pytest.fail("%s did not finish (%s):\n%s" % (protClass.__name__, prot.getStatus(), tail))
    return prot


def gt_resolution(volume_path, gt_path, threshold=0.5):
    """Resolution (Å) where the FSC of a map with the ground truth crosses ``threshold``."""
    from flexplugin.engine.analysis.fsc import fsc, resolution_at
    from flexplugin.engine.io import read_mrc
    vol, apix = read_mrc(volume_path)
    gt, _ = read_mrc(gt_path)
    freqs, curve = fsc(vol, gt)
    return resolution_at(freqs, curve, threshold, apix), float(np.corrcoef(vol.ravel(), gt.ravel())[0, 1])


def sim_file(prot, *paths):
    return os.path.abspath(os.path.join(prot.getWorkingDir(), "extra", *paths))
