"""Crash and resume in a real project, for every training protocol: ``kill -9`` of a run during
training (the protocol's process and the engine under it), then Scipion's "Continue" carries on
from the last checkpoint, losing at most one epoch, and ends with the outputs of an uninterrupted
run of the same seed. (The engine side: tests/engine/test_faults.py.)"""
import json
import os
import re
import signal
import time

import numpy as np
import psutil
import pytest
import torch
from scipion_helpers import launch, new_project

from flexplugin.synthetic import two_domain_chain, write_pdb

EPOCHS = 6
# Each protocol small and fast (~0.5-3 s an epoch on one thread), on the engine's default seed
# (the forms have none): (protocol class name, form values, inputs besides the particles).
COMMON = dict(zDim=2, numEpochs=EPOCHS, batchSize=32, useGpu=False)
PROTOCOLS = {
    "cryodrgn": ("ProtFlexCryoDrgn", dict(encDim=32, encLayers=1, decDim=32, decLayers=1), {}),
    "hetsiren": ("ProtFlexHetSiren", dict(encoderType=0, learningRate=1e-4), {}),
    "hetacumn": ("ProtFlexHetAcumn", dict(frozenEpochs=1, boxSize=16), {}),   # D=16: 4x faster
    "cryosphere": ("ProtFlexCryoSphere", dict(numSegments=2, numStructures=2, learningRate=1e-3),
                   {"inputStructure": "outputStructure"}),
}
# As tests/engine/test_faults.py: the resumed run restores the model, optimizer, torch RNG and the
# sampler's generator from the checkpoint, so it does the same arithmetic on the same (one)
# thread as the uninterrupted run (measured: identical); the tolerances only absorb a different
# summation order.
WEIGHT_ATOL, Z_ATOL, LOSS_RTOL = 1e-5, 1e-4, 1e-4


def _train_dir(prot, *paths):
    return os.path.join(prot.getWorkingDir(), "extra", "train", *paths)


def _epochs_done(prot):
    try:
        with open(_train_dir(prot, "metrics.json")) as f:
            return len(json.load(f)["epochs"])
    except (OSError, ValueError, KeyError):
        return 0


def _last_epoch_seconds(prot):
    try:
        with open(_train_dir(prot, "metrics.json")) as f:
            return float(json.load(f)["epochs"][-1]["seconds"])
    except (OSError, ValueError, KeyError, IndexError):
        return 0.0


def _log(prot):
    path = prot.getStdoutLog()
    return open(path, errors="replace").read() if os.path.exists(path) else ""


def _checkpoint(prot):
    return torch.load(_train_dir(prot, "checkpoint.pt"), map_location="cpu", weights_only=True)


def _z(prot):
    """The latent vectors registered on the output particles (particle-id order)."""
    return np.array([p.getZFlex() for p in prot.outputParticles.iterItems(orderBy="id")], dtype=float)


def _running(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_tree(pid):
    """kill -9 of a process and everything under it (all listed first, then killed, the top first,
    so that no process sees another die); the launched process is reaped, as its parent would."""
    top = psutil.Process(pid)
    procs = [top] + top.children(recursive=True)
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)
    try:                                   # our child: a zombie counts as alive for pyworkflow
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    return len(procs)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A project with 400 particles (D=32) simulated from an imported two-domain model (3 states)."""
    from pwem.protocols import ProtImportPdb
    from flexplugin.protocols import ProtFlexSimulate
    project = new_project("flexContinueAfterKill")
    pdb = write_pdb(tmp_path_factory.mktemp("model") / "two_domains.pdb", two_domain_chain())
    imported = launch(project, ProtImportPdb, inputPdbData=1, pdbFile=str(pdb))
    sim = launch(project, ProtFlexSimulate, inputs={"inputStructure": (imported, "outputPdb")}, source=2,
                 numParticles=400, boxSize=32, samplingRate=3.0, snr=1.0, seed=3, numStates=3)
    return project, sim


def test_every_training_protocol_is_covered():
    from flexplugin.engine.methods import METHODS
    assert set(PROTOCOLS) == set(METHODS)


@pytest.mark.parametrize("method", sorted(PROTOCOLS))
def test_kill_then_continue_equals_uninterrupted_run(method, simulated, monkeypatch):
    from pyworkflow.protocol.constants import MODE_RESUME

    import flexplugin.protocols as protocols
    monkeypatch.setenv("OMP_NUM_THREADS", "1")       # inherited by the runs and their engine
    project, sim = simulated
    os.chdir(project.getPath())
    name, form, extra = PROTOCOLS[method]
    cls, train = getattr(protocols, name), dict(COMMON, **form)
    inputs = {"inputParticles": (sim, "outputParticles")}
    inputs.update({param: (sim, output) for param, output in extra.items()})
    ref = launch(project, cls, inputs=inputs, **train)

    # The same run again, killed (-9, the whole process tree) halfway through the epoch after the
    # second (the partial epoch is lost), before the last.
    prot = project.newProtocol(cls, **train)
    for param, (src, output) in inputs.items():
        getattr(prot, param).set(src)
        getattr(prot, param).setExtended(output)
    project.launchProtocol(prot, wait=False)
    pid, t0 = prot.getPid(), time.time()
    assert pid and psutil.pid_exists(pid)
    while _epochs_done(prot) < 2 and _running(pid) and time.time() - t0 < 180:
        time.sleep(0.02)
    time.sleep(0.5 * _last_epoch_seconds(prot))                  # into the next epoch
    alive = _running(pid)
    killed = _kill_tree(pid) if alive else 0
    done = _epochs_done(prot)
    log = _log(prot)
    assert alive and 2 <= done < EPOCHS, \
        "the kill did not land during training (%d epochs done, alive %s):\n%s" % (done, alive, log[-3000:])
    assert killed >= 2, "the engine subprocess was not running under the protocol's process"
    assert not os.path.exists(_train_dir(prot, "z.npy"))        # killed during training, not after
    logged = [int(e) for e in re.findall(r"train: epoch (\d+)/%d " % EPOCHS, log)]
    completed = max(logged + [_epochs_done(prot)])               # epochs finished at the kill
    ck = _checkpoint(prot)                                      # loadable: never half-written
    assert "weights" in ck["model"] and 2 <= ck["epoch"] < EPOCHS and ck["epoch"] >= completed - 1

    # What the user sees: the project's status update finds the process gone and marks the run failed.
    project._updateProtocol(prot)
    assert prot.isFailed(), prot.getStatus()
    assert "not found running" in (prot.getErrorMessage() or ""), prot.getErrorMessage()

    # "Continue" (the GUI's Continue button: run mode resume, then launch).
    prot.runMode.set(MODE_RESUME)
    project.launchProtocol(prot, wait=True)
    log = _log(prot)
    assert prot.isFinished(), "%s:\n%s" % (prot.getStatus(), log[-4000:])
    resumed = re.findall(r"resuming %s from epoch (\d+)" % method, log)
    assert resumed, log[-4000:]
    k = int(resumed[-1])
    print("%s: continue after kill -9: %d epochs logged at the kill, checkpoint of epoch %d, resumed from "
          "epoch %d of %d" % (method, completed, ck["epoch"], k, EPOCHS))
    assert k == ck["epoch"] and completed - 1 <= k < EPOCHS      # at most one epoch lost

    # The outputs of the uninterrupted run.
    with open(_train_dir(prot, "metrics.json")) as f:
        metrics = json.load(f)["epochs"]
    with open(_train_dir(ref, "metrics.json")) as f:
        metrics_ref = json.load(f)["epochs"]
    assert [m["epoch"] for m in metrics] == list(range(1, EPOCHS + 1))
    assert np.allclose([m["loss"] for m in metrics], [m["loss"] for m in metrics_ref], rtol=LOSS_RTOL)
    got, want = _checkpoint(prot), _checkpoint(ref)
    assert got["epoch"] == want["epoch"] == EPOCHS
    dw = max(float((got["model"]["weights"][key].float() - w.float()).abs().max())
             for key, w in want["model"]["weights"].items())
    prot = project.getProtocol(prot.getObjId())     # the registered outputs, read back
    ref = project.getProtocol(ref.getObjId())
    z, z_ref = _z(prot), _z(ref)
    z_file, z_file_ref = np.load(_train_dir(prot, "z.npy")), np.load(_train_dir(ref, "z.npy"))
    dz = float(np.abs(z - z_ref).max())
    print("%s: continue after kill -9 vs uninterrupted: max |weight difference| %.2e, max |z difference| "
          "%.2e (outputParticles), %.2e (z.npy)" % (method, dw, dz, np.abs(z_file - z_file_ref).max()))
    assert dw <= WEIGHT_ATOL
    assert z.shape == z_ref.shape == (400, 2)
    assert np.allclose(z, z_file.reshape(z.shape), atol=1e-5)            # registered = the file
    assert np.allclose(z_file, z_file_ref, atol=Z_ATOL) and dz <= Z_ATOL
    assert not [f for f in os.listdir(_train_dir(prot)) if f.endswith(".tmp") or f.startswith(".checkpoint")]
