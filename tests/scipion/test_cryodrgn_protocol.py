"""simulate (1D motion) -> ProtFlexCryoDrgn in a real project: latent vectors on the particles and a
consensus VolumeFlex, checked against the simulation's ground truth."""
import json
import os

import numpy as np
from scipion_helpers import launch, new_project, sim_file
from scipy.stats import spearmanr

from flexplugin.engine.io import read_mrc


def test_simulate_then_cryodrgn():
    from flexplugin.protocols import ProtFlexCryoDrgn, ProtFlexSimulate
    project = new_project("flexCryoDrgn")
    sim = launch(project, ProtFlexSimulate, numParticles=1200, boxSize=32, samplingRate=3.0, snr=1.0,
                 seed=5, numStates=5)
    train = launch(project, ProtFlexCryoDrgn, inputs={"inputParticles": (sim, "outputParticles")},
                   zDim=1, numEpochs=12, encDim=128, decDim=128)
    parts = train.outputParticles
    assert parts.getSize() == 1200 and parts.hasCTF()
    info = parts.getFlexInfo()
    assert info.getProgName() == "cryodrgn" and info.getAttributeValue("zDim") == 1
    z_file = np.load(os.path.join(train.getWorkingDir(), "extra", "train", "z.npy"))
    z = np.array([p.getZFlex() for p in parts.iterItems(orderBy="id")], dtype=float).reshape(-1)
    assert np.allclose(z, z_file.reshape(-1), atol=1e-5)      # star-row order = particle-id order
    labels = np.load(sim_file(sim, "labels.npy"))
    rho = abs(spearmanr(z, labels).correlation)
    print("cryoDRGN protocol: |Spearman(z, state)| = %.3f" % rho)
    assert rho > 0.6
    vol = train.outputVolume
    assert abs(vol.getSamplingRate() - 3.0) < 1e-6
    consensus, _ = read_mrc(os.path.join(project.getPath(), vol.getFileName()))
    gt = np.mean([read_mrc(sim_file(sim, "gt_volumes", "state_%02d.mrc" % k))[0] for k in range(5)], axis=0)
    corr = np.corrcoef(consensus.ravel(), gt.ravel())[0, 1]
    print("cryoDRGN protocol: consensus vs mean ground truth correlation %.3f" % corr)
    assert corr > 0.8
    assert train.summary() and train.methods()
    assert any("Zhong" in c and "10.1038/s41592-020-01049-4" in c for c in train.citations())

    # "Continue" with more epochs trains on from the last checkpoint.
    from pyworkflow.protocol.constants import MODE_RESUME
    train.numEpochs.set(13)
    train.runMode.set(MODE_RESUME)
    project.launchProtocol(train, wait=True)
    assert train.isFinished(), train.getStatus()
    extra = os.path.join(train.getWorkingDir(), "extra", "train")
    with open(os.path.join(extra, "metrics.json")) as f:
        assert len(json.load(f)["epochs"]) == 13
    log = open(train.getLogPaths()[0], errors="replace").read()
    assert "resuming cryodrgn from epoch 12" in log
    train = project.getProtocol(train.getObjId())     # reload the re-registered outputs
    z2 = np.array([p.getZFlex() for p in train.outputParticles.iterItems(orderBy="id")], dtype=float).reshape(-1)
    assert np.allclose(z2, np.load(os.path.join(extra, "z.npy")).reshape(-1), atol=1e-5)
