"""The HetSIREN, HetACUMN and cryoSPHERE protocols in a real project, on small simulated sets and
a few epochs: their optional inputs reach the engine, their outputs are registered with the values
the engine wrote, and the analysis protocols take them unchanged. (Each method's science is tested
on the engine side, tests/engine/test_<method>.py.)"""
import os

import numpy as np
import pytest
from scipion_helpers import launch, new_project, sim_file

from flexplugin.engine.io import read_mrc
from flexplugin.synthetic import two_domain_chain, write_pdb

SMALL = dict(boxSize=0, numEpochs=2, zDim=2, batchSize=32)


@pytest.fixture(scope="module")
def hinge():
    from flexplugin.protocols import ProtFlexSimulate
    project = new_project("flexMethods")
    sim = launch(project, ProtFlexSimulate, numParticles=400, boxSize=32, samplingRate=3.0, snr=1.0,
                 seed=11, numStates=3)
    return project, sim


def _z(prot):
    z = np.array([p.getZFlex() for p in prot.outputParticles.iterItems(orderBy="id")])
    assert np.allclose(z, np.load(os.path.join(prot.getWorkingDir(), "extra", "train", "z.npy")), atol=1e-5)
    return z


def test_hetsiren_with_mask_and_reference(hinge):
    from flexplugin.protocols import ProtFlexCreateMask, ProtFlexHetSiren, ProtFlexLandscape, ProtFlexReconstruct
    project, sim = hinge
    os.chdir(project.getPath())
    recon = launch(project, ProtFlexReconstruct, inputs={"inputParticles": (sim, "outputParticles")})
    mask = launch(project, ProtFlexCreateMask, inputs={"inputVolume": (recon, "outputVolume")},
                  shape=0, center="-10 8 0", radius=18.0, softEdge=6.0)
    m, apix = read_mrc(os.path.join(project.getPath(), mask.outputMask.getFileName()))
    assert m.shape == (32, 32, 32) and abs(apix - 3.0) < 1e-5 and 0 <= m.min() and m.max() == 1
    train = launch(project, ProtFlexHetSiren, inputs={"inputParticles": (sim, "outputParticles"),
                                                     "inputMask": (mask, "outputMask"),
                                                     "inputReference": (recon, "outputVolume")},
                   learningRate=1e-3, **SMALL)
    assert train.outputParticles.getSize() == 400 and _z(train).shape == (400, 2)
    log = open(train.getLogPaths()[0], errors="replace").read()
    assert "--mask" in log and "--reference" in log
    vol, _ = read_mrc(os.path.join(project.getPath(), train.outputVolume.getFileName()))
    ref, _ = read_mrc(os.path.join(project.getPath(), recon.outputVolume.getFileName()))
    outside = m < 1e-6
    assert np.abs(vol[outside] - ref[outside]).max() < 1e-3 * np.abs(ref).max()   # the reference kept
    land = launch(project, ProtFlexLandscape, inputs={"inputParticles": (train, "outputParticles")},
                  reduction=1, numClusters=2, numPCs=1, traversalPoints=2)
    assert land.outputClasses.getSize() == 2 and land.outputTraversalPC1.getSize() == 2
    assert any("Herreros" in c for c in train.citations())


def test_hetsiren_form_refuses_a_mask_of_another_box(hinge):
    from flexplugin.protocols import ProtFlexCreateMask, ProtFlexHetSiren, ProtFlexReconstruct
    project, sim = hinge
    os.chdir(project.getPath())
    recon = launch(project, ProtFlexReconstruct, inputs={"inputParticles": (sim, "outputParticles")},
                   boxSize=16)
    mask = launch(project, ProtFlexCreateMask, inputs={"inputVolume": (recon, "outputVolume")}, radius=15.0)
    prot = project.newProtocol(ProtFlexHetSiren, **SMALL)
    prot.inputParticles.set(sim)
    prot.inputParticles.setExtended("outputParticles")
    prot.inputMask.set(mask)
    prot.inputMask.setExtended("outputMask")
    errors = prot.validate()
    assert any("Mask: 16 px at 6.000" in e for e in errors), errors


def test_hetacumn_without_alignment(hinge):
    from flexplugin.protocols import ProtFlexHetAcumn
    project, sim = hinge
    os.chdir(project.getPath())
    train = launch(project, ProtFlexHetAcumn, inputs={"inputParticles": (sim, "outputParticles")},
                   frozenEpochs=1, **SMALL)
    parts = train.outputParticles
    assert parts.getSize() == 400 and parts.hasAlignmentProj() and _z(train).shape == (400, 2)
    # the registered alignment is the engine's estimate, not the input's
    from flexplugin.convert import matrixToPose
    est = np.load(os.path.join(train.getWorkingDir(), "extra", "train", "rotations.npy"))
    rot, _ = matrixToPose(parts.getFirstItem().getTransform().getMatrix(), parts.getSamplingRate())
    assert np.allclose(rot, est[0], atol=1e-5)
    assert not np.allclose(est[0], np.load(sim_file(sim, "rotations.npy"))[0], atol=1e-3)


def test_cryosphere_models_and_segments(tmp_path):
    from pwem.protocols import ProtImportPdb
    from flexplugin.protocols import ProtFlexCryoSphere, ProtFlexSimulate
    project = new_project("flexCryoSphere")
    pdb = write_pdb(tmp_path / "two_domains.pdb", two_domain_chain())
    imported = launch(project, ProtImportPdb, inputPdbData=1, pdbFile=str(pdb))
    sim = launch(project, ProtFlexSimulate, inputs={"inputStructure": (imported, "outputPdb")}, source=2,
                 numParticles=300, boxSize=32, samplingRate=3.0, snr=1.0, seed=2, numStates=3)
    train = launch(project, ProtFlexCryoSphere, inputs={"inputParticles": (sim, "outputParticles"),
                                                       "inputStructure": (sim, "outputStructure")},
                   numSegments=3, numStructures=2, learningRate=1e-3, **SMALL)
    assert _z(train).shape == (300, 2)
    models = list(train.outputStructures)
    assert len(models) == 2 and all(len(m.getZFlex()) == 2 for m in models)
    from flexplugin.engine.io.structure import read_structure
    for m in models:
        st = read_structure(os.path.join(project.getPath(), m.getFileName()))
        assert st.coords.shape == (1, 100, 3)
    numbers, labels = train.segmentation()
    assert list(numbers) == list(range(1, 101)) and set(labels) <= {1, 2, 3}
    assert any("Segmentation" in line for line in train.summary())
