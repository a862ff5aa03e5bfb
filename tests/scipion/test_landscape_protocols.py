"""simulate (3 states) -> train cryoDRGN -> landscape analysis -> decode / subset / predict, in a
real project. The analysis protocols only use the trained model through the Method contract, so
this chain is the same for every method."""
import os

import numpy as np
import pytest
from scipion_helpers import launch, new_project, sim_file
from sklearn.metrics import adjusted_rand_score

from flexplugin.engine.io import read_mrc

# 3 states of the built-in hinge (0, 45, 90 degrees), 1200 particles, SNR 1, D=32, zdim 2, 15 epochs:
# k-means(3) on z gave ARI 1.00 with the true states; a landscape of random z gives ~0.
ARI_MIN = 0.9


@pytest.fixture(scope="module")
def trained():
    from flexplugin.protocols import ProtFlexCryoDrgn, ProtFlexSimulate
    project = new_project("flexLandscape")
    sim = launch(project, ProtFlexSimulate, numParticles=1200, boxSize=32, samplingRate=3.0, snr=1.0,
                 seed=7, numStates=3, maxAngle=90.0)
    train = launch(project, ProtFlexCryoDrgn, inputs={"inputParticles": (sim, "outputParticles")},
                   zDim=2, numEpochs=15, encDim=128, decDim=128, learningRate=1e-3, batchSize=16)
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
    assert parts.getSize() == 1200
    zred = np.array([p.getZRed() for p in parts.iterItems(orderBy="id")])
    assert zred.shape == (1200, 2) and np.isfinite(zred).all()
    labels = np.load(sim_file(sim, "labels.npy"))
    classes = land.outputClasses
    assert classes.getSize() == 3
    predicted = np.zeros(1200, int)
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
    log = open(os.path.join(project.getPath(), land.getLogPaths()[0]), errors="replace").read()
    assert "FOR DEVELOPERS" not in log

    from flexplugin.protocols import ProtFlexSubset
    first = classes.getFirstItem()
    subset = launch(project, ProtFlexSubset, inputs={"inputParticles": (land, "outputParticles"),
                                                     "inputClasses": (land, "outputClasses")},
                    source=0, classIds=str(first.getObjId()))
    assert _ids(subset.outputParticles) == sorted(p.getObjId() for p in first.iterItems())


def test_decode_subset_predict(trained, tmp_path):
    from flexplugin.engine.cli import main as engine_cli
    from flexplugin.protocols import ProtFlexDecode, ProtFlexPredict, ProtFlexSubset
    project, sim, train = trained
    os.chdir(project.getPath())
    decode = launch(project, ProtFlexDecode, inputs={"inputParticles": (train, "outputParticles")},
                    source=0, zText="0 0\n1.5, -0.5")
    vols = list(decode.outputVolumes)
    assert len(vols) == 2 and np.allclose(vols[1].getZFlex(), [1.5, -0.5])
    model = os.path.join(train.getWorkingDir(), "extra", "train")
    assert engine_cli(["decode", "--model", model, "--z", "1.5,-0.5", "--out", str(tmp_path)]) == 0
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


def _wait_finished(project, prot, timeout=300):
    import time
    for _ in range(timeout):
        project._updateProtocol(prot)          # what the project window does: read its run.db
        if prot.isFinished() or prot.isFailed():
            break
        time.sleep(1)
    return project.getProtocol(prot.getObjId())


def test_landscape_viewer_from_the_project(trained):
    """The viewer Scipion offers for the particles opens the landscape window (Xvfb when
    available, else offscreen Qt) with a map decoded through `flexplugin serve`; its subset
    action launches a ProtFlexSubset run of the chosen ids."""
    import shutil
    import subprocess
    from flexplugin.protocols import ProtFlexLandscape
    from flexplugin.viewers import FlexLandscapeViewer
    from flexplugin.viewers.app import subset_launcher
    from pyworkflow.viewer import DESKTOP_TKINTER
    from pwem import Domain
    project, sim, train = trained
    os.chdir(project.getPath())
    land = launch(project, ProtFlexLandscape, inputs={"inputParticles": (train, "outputParticles")},
                  reduction=1, numClusters=3, numPCs=0)
    viewers = Domain.findViewers(land.outputParticles, DESKTOP_TKINTER)
    assert FlexLandscapeViewer in viewers
    view = FlexLandscapeViewer(project=project)._visualize(land.outputParticles)[0]
    artifacts = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "artifacts")
    os.makedirs(artifacts, exist_ok=True)
    shot = os.path.join(artifacts, "viewer_landscape_project.png")
    if os.path.exists(shot):
        os.remove(shot)
    env = dict(os.environ, FLEXPLUGIN_SCREENSHOT=shot)
    cmd = view.command()
    if shutil.which("xvfb-run"):
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"] + cmd
        env["QT_QPA_PLATFORM"] = "xcb"
    else:
        env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.run(cmd, cwd=view.cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert os.path.getsize(shot) > 20000

    ids = _ids(land.outputParticles)[::7]
    subset = subset_launcher(project, land, "outputParticles",
                             os.path.join(land.getWorkingDir(), "extra"))(ids, "every 7th")
    subset = _wait_finished(project, subset)
    assert subset.isFinished(), subset.getStatus()
    assert _ids(subset.outputParticles) == ids
