"""Bad inputs at the protocol level, for every training protocol: the form refuses what it can
check before the run (``_validate``), and a failure the engine finds during the run becomes the
run's error message (the file and the problem, as the GUI shows it), with the input untouched."""
import os
import shutil

import pytest
from scipion_helpers import launch, new_project

PROTOCOLS = ["ProtFlexCryoDrgn", "ProtFlexHetSiren", "ProtFlexHetAcumn", "ProtFlexCryoSphere"]


@pytest.fixture(scope="module")
def simulated():
    from flexplugin.protocols import ProtFlexSimulate
    project = new_project("flexProtocolErrors")
    sim = launch(project, ProtFlexSimulate, numParticles=60, boxSize=16, samplingRate=4.0, snr=1.0,
                 seed=5, numStates=1)
    return project, sim


def _new(project, name, sim, **kwargs):
    import flexplugin.protocols as protocols
    prot = project.newProtocol(getattr(protocols, name), **kwargs)
    prot.inputParticles.set(sim)
    prot.inputParticles.setExtended("outputParticles")
    return prot


def test_every_training_protocol_is_listed():
    import flexplugin.protocols as protocols
    from flexplugin.engine.methods import METHODS
    from flexplugin.protocols.protocol_train_base import ProtFlexTrainBase
    found = {name for name in dir(protocols) if isinstance(getattr(protocols, name), type)
             and issubclass(getattr(protocols, name), ProtFlexTrainBase)
             and getattr(protocols, name) is not ProtFlexTrainBase}
    assert found == set(PROTOCOLS) and len(found) == len(METHODS)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_form_refuses_a_bad_box(name, simulated):
    project, sim = simulated
    for box, why in [(15, "even"), (32, "at most the particle box (16)")]:
        errors = _new(project, name, sim, boxSize=box).validate()
        assert any(why in e for e in errors), (box, errors)


def test_cryosphere_form_asks_for_its_atomic_model(simulated):
    project, sim = simulated
    errors = _new(project, "ProtFlexCryoSphere", sim).validate()
    assert any("is required" in e for e in errors), errors


def test_engine_error_becomes_the_run_error_message(simulated, tmp_path):
    """The particles' stack is damaged after the import: the run fails, its error message names
    the stack and says what is wrong (not only an exit status), and the stack is left as it was."""
    from flexplugin.protocols import ProtFlexSimulate
    project, _ = simulated
    os.chdir(project.getPath())
    sim = launch(project, ProtFlexSimulate, numParticles=60, boxSize=16, samplingRate=4.0, snr=1.0,
                 seed=6, numStates=1)
    stack = os.path.abspath(sim.outputParticles.getFirstItem().getFileName())
    with open(stack, "r+b") as f:
        f.truncate(1024 + 16 * 16 * 4 * 10)             # the header and 10 of the 60 images
    kept = open(stack, "rb").read()
    prot = _new(project, "ProtFlexCryoDrgn", sim, zDim=1, numEpochs=1, encDim=8, encLayers=1,
                decDim=8, decLayers=1, useGpu=False)
    assert not prot.validate()
    project.launchProtocol(prot, wait=True)
    assert prot.isFailed(), prot.getStatus()
    message = prot.getErrorMessage() or ""
    print("run error message: %s" % message)
    assert "flexplugin train failed" in message and os.path.basename(stack) in message, message
    assert "truncated" in message, message
    assert open(stack, "rb").read() == kept
    shutil.rmtree(prot.getWorkingDir(), ignore_errors=True)


@pytest.mark.parametrize("fallback", [False, True])
def test_gpu_asked_for_without_one(simulated, fallback):
    """Use GPU on a machine without a working CUDA device: with the CPU fall-back refused the run
    fails with the engine's one line naming the device problem; allowed, it trains on the CPU and
    the summary warns. (With CUDA, the run trains on the GPU.)"""
    import torch
    project, sim = simulated
    prot = _new(project, "ProtFlexCryoDrgn", sim, zDim=1, numEpochs=1, encDim=8, encLayers=1,
                decDim=8, decLayers=1, useGpu=True, cpuFallback=fallback)
    assert not prot.validate()
    project.launchProtocol(prot, wait=True)
    summary = " ".join(prot.summary())
    if torch.cuda.is_available():
        assert prot.isFinished() and "Trained on cuda" in summary, (prot.getStatus(), summary)
    elif fallback:
        assert prot.isFinished(), prot.getErrorMessage()
        assert "Trained on cpu" in summary and "WARNING: a GPU was asked for" in summary, summary
    else:
        assert prot.isFailed(), prot.getStatus()
        message = prot.getErrorMessage() or ""
        assert "--device: cuda was asked for, but" in message, message
    shutil.rmtree(prot.getWorkingDir(), ignore_errors=True)
