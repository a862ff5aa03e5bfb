"""simulate (3 states) -> train cryoDRGN -> landscape analysis -> decode / subset / predict, in a
real project. The analysis protocols only use the trained model through the Method contract, so
this chain is the same for every method."""
import os

import numpy as np
import pytest
from conftest import launch, new_project, sim_file
from sklearn.metrics import adjusted_rand_score

from flexplugin.engine.io import read_mrc

# 3 states of the built-in hinge (0, 30, 60 degrees), SNR 1, D=32, zdim 2, 10 epochs: k-means(3)
# on z gave ARI 1.00 with the true states; a landscape of random z gives ~0.
ARI_MIN = 0.9


@pytest.fixture(scope="module")
def trained():
    from flexplugin.protocols import ProtFlexCryoDrgn, ProtFlexSimulate
    project = new_project("flexLandscape")
    sim = launch(project, ProtFlexSimulate, numParticles=900, boxSize=32, samplingRate=3.0, snr=1.0,
                 seed=7, numStates=3)
    train = launch(project, ProtFlexCryoDrgn, inputs={"inputParticles": (sim, "outputParticles")},
                   zDim=2, numEpochs=10, encDim=128, decDim=128)
    return project, sim, train


def _ids(particles):
    return [p.getObjId() for p in particles.iterItems(orderBy="id")]


def test_landscape_classes_match_states(trained):
    from flexplugin.protocols import ProtFlexLandscape
    project, sim, train = trained
    os.chdir(project.getPath())
    land = launch(project, ProtFlexLandscape, inputs={"inputParticles": (train, "outputParticles")},
                  reduction=1, numClusters=3, numPCs=1, traversalPoints=4)
    parts = land.outputParticles
    assert parts.getSize() == 900
    zred = np.array([p.getZRed() for p in parts.iterItems(orderBy="id")])
    assert zred.shape == (900, 2) and np.isfinite(zred).all()
    labels = np.load(sim_file(sim, "labels.npy"))
    classes = land.outputClasses
    assert classes.getSize() == 3
    predicted = np.zeros(900, int)
    ids = _ids(parts)
    for cls in classes:
        for p in cls.iterItems():
            predicted[ids.index(p.getObjId())] = cls.getObjId()
        rep = cls.getRepresentative()
        vol, apix = read_mrc(os.path.join(project.getPath(), rep.getFileName()))
        assert vol.shape == (32, 32, 32) and abs(rep.getSamplingRate() - 3.0) < 1e-6
        assert len(rep.getZFlex()) == 2
    ari = adjusted_rand_score(labels, predicted)
    print("landscape protocol: k-means(3) ARI %.3f" % ari)
    assert ari >= ARI_MIN
    traversal = land.outputTraversalPC1
    assert traversal.getSize() == 4 and all(len(v.getZFlex()) == 2 for v in traversal)
    assert land.summary() and land.methods()


def test_decode_subset_predict(trained, tmp_path):
    from flexplugin.protocols import ProtFlexDecode, ProtFlexPredict, ProtFlexSubset
    from conftest import run_cli
    project, sim, train = trained
    os.chdir(project.getPath())
    decode = launch(project, ProtFlexDecode, inputs={"inputParticles": (train, "outputParticles")},
                    source=0, zText="0 0\n1.5, -0.5")
    vols = list(decode.outputVolumes)
    assert len(vols) == 2 and np.allclose(vols[1].getZFlex(), [1.5, -0.5])
    model = os.path.join(train.getWorkingDir(), "extra", "train")
    assert run_cli("decode", "--model", model, "--z", "1.5,-0.5", "--out", tmp_path) == 0
    ours, _ = read_mrc(os.path.join(project.getPath(), vols[1].getFileName()))
    ref, _ = read_mrc(tmp_path / "vol_000.mrc")
    assert np.allclose(ours, ref, atol=1e-5)

    ids = _ids(train.outputParticles)
    chosen = ids[5:50:3]
    selection = tmp_path / "selection.txt"
    selection.write_text("# chosen on the landscape\n" + "\n".join(map(str, chosen)) + "\n")
    subset = launch(project, ProtFlexSubset, inputs={"inputParticles": (train, "outputParticles")},
                    source=1, selectionFile=str(selection), subsetName="left arm")
    assert _ids(subset.outputParticles) == chosen
    assert subset.outputParticles.getFlexInfo().getProgName() == "cryodrgn"
    assert len(subset.outputParticles.getFirstItem().getZFlex()) == 2

    predict = launch(project, ProtFlexPredict, inputs={"inputModel": (train, "outputParticles"),
                                                       "inputParticles": (sim, "outputParticles")})
    z_pred = np.array([p.getZFlex() for p in predict.outputParticles.iterItems(orderBy="id")])
    z_train = np.array([p.getZFlex() for p in train.outputParticles.iterItems(orderBy="id")])
    assert np.allclose(z_pred, z_train, atol=1e-4)
