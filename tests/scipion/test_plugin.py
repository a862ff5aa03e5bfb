"""Plugin command lines, install commands, conversions and the training base (no engine run)."""
import os
import shlex
import subprocess
import sys

import numpy as np
import pyworkflow.protocol.params as params
import pytest

from flexplugin import Plugin
from flexplugin.constants import ENGINE_ENV_NAME, FLEXPLUGIN_ENV_ACTIVATION
from flexplugin.protocols import ProtFlexTrainBase

ODD = "/data/my proj's \"maps\" $HOME/particles.star"


def test_scipion_side_imports_no_torch():
    code = ("import sys, flexplugin.plugin, flexplugin.convert, flexplugin.protocols; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("activation", ["", ". '/em/flex env/bin/activate'"])
def test_engine_command_quotes_every_argument(monkeypatch, activation):
    monkeypatch.setitem(Plugin._vars, FLEXPLUGIN_ENV_ACTIVATION, activation)
    line = Plugin.getEngineCommand("reconstruct", ["--particles", ODD, "--box", 16], gpus=[0, 1])
    assert line.startswith(activation + " && " if activation else "CUDA")
    engine = line.split(" && ")[-1]
    words = shlex.split(engine)
    assert words[0] == "CUDA_VISIBLE_DEVICES=0,1"
    assert words[2:] == ["-m", "flexplugin.engine.cli", "reconstruct", "--particles", ODD, "--box", "16"]
    out = subprocess.run(["bash", "-c", "printf '%s\\n' " + engine.split(" -m flexplugin.engine.cli ")[1]],
                         capture_output=True, text=True).stdout.splitlines()
    assert out == ["reconstruct", "--particles", ODD, "--box", "16"]
    assert "CUDA_VISIBLE_DEVICES" not in Plugin.getEngineCommand("check", [ODD])


def test_engine_runs_in_a_project_path_with_a_space_and_a_quote(tmp_path, monkeypatch):
    """An engine command built by Plugin and run through a shell the way protocol.runJob runs it,
    on a particle set in a folder whose name holds a space, quotes and ``$``: the engine reads it
    and writes its output there."""
    from pyworkflow.utils.process import runJob
    from flexplugin.engine.simulate import simulate
    monkeypatch.setitem(Plugin._vars, FLEXPLUGIN_ENV_ACTIVATION, "")
    folder = tmp_path / "my proj's \"data\" $HOME"
    simulate(str(folder), n=20, box=8, apix=4.0, snr=1.0, seed=0, states=1, log=lambda *a: None)
    out = folder / "mask $1.mrc"
    line = Plugin.getEngineCommand("mask", ["--out", out, "--sphere", "--box", 8, "--apix", 4.0,
                                            "--radius", 8])
    runJob(None, line, "", env=Plugin.getEnviron())
    assert out.is_file()
    result = subprocess.run(["bash", "-c", Plugin.getEngineCommand("check", [folder / "particles.star"])],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "%s: OK" % (folder / "particles.star") in result.stdout


def test_default_activation_conda_or_venv(monkeypatch):
    import pwem
    import pyworkflow as pw
    monkeypatch.setattr(pw.Config, "CONDA_ACTIVATION_CMD", "")
    assert Plugin.defaultActivation() == ". %s" % shlex.quote(
        os.path.join(pwem.Config.EM_ROOT, ENGINE_ENV_NAME, "bin", "activate"))
    monkeypatch.setattr(pw.Config, "CONDA_ACTIVATION_CMD", 'eval "$(conda shell.bash hook)"')
    monkeypatch.setattr(Plugin, "_condaActivationCmd", None)
    assert Plugin.defaultActivation() == "conda activate " + ENGINE_ENV_NAME
    monkeypatch.setitem(Plugin._vars, FLEXPLUGIN_ENV_ACTIVATION, Plugin.defaultActivation())
    assert Plugin.getActivationCmd().startswith('eval "$(conda shell.bash hook)"&& conda activate')
    install = Plugin.getInstallCommand(torchIndex="https://download.pytorch.org/whl/cpu")
    assert "conda create -y -n %s" % ENGINE_ENV_NAME in install
    assert "torch==2.13.0 --extra-index-url https://download.pytorch.org/whl/cpu" in install
    assert install.endswith("[engine]'")


def test_define_binaries_registers_the_engine_env(monkeypatch):
    import pyworkflow as pw
    monkeypatch.setattr(pw.Config, "CONDA_ACTIVATION_CMD", "")
    calls = []

    class Env:
        def addPackage(self, name, **kw):
            calls.append((name, kw))

    Plugin.defineBinaries(Env())
    (name, kw), = calls
    (command, targets), = kw["commands"]
    assert name == "flexplugin" and kw["version"] == "0.1.0"
    assert " -m venv " in command and "pip install torch==2.13.0" in command
    assert targets == [os.path.join("bin", "flexplugin")]


def test_alignment_matrix_matches_relion_convention():
    """Our pose -> matrix equals scipion-em-relion's M = inv([[E, -s], [0, 1]])."""
    from pwem.convert.transformations import euler_matrix
    from flexplugin.convert import matrixToPose, poseToMatrix
    from flexplugin.engine.geometry import so3
    rng = np.random.default_rng(0)
    for rot, tilt, psi, x, y in rng.uniform([-180, 0, -180, -9, -9], [180, 180, 180, 9, 9], (20, 5)):
        e = euler_matrix(*np.deg2rad([-rot, -tilt, -psi]), axes="szyz")[:3, :3]
        ref = np.eye(4)
        ref[:3, :3] = e
        ref[:3, 3] = -np.array([x, y, 0]) / 1.5
        m = poseToMatrix(so3.euler_to_matrix(rot, tilt, psi), (x, y), 1.5)
        np.testing.assert_allclose(m, np.linalg.inv(ref), atol=1e-12)
        back_rot, back_shift = matrixToPose(m, 1.5)
        np.testing.assert_allclose(back_rot, e, atol=1e-12)
        np.testing.assert_allclose(back_shift, (x, y), atol=1e-12)


class ProtFlexTrainDummy(ProtFlexTrainBase):
    """A method subclass as the method issues write them (used in-process only)."""
    _label = "train dummy"
    _method = "dummy"
    _methodOptions = {"numLayers": "--layers", "useFlag": "--flag"}

    def _defineMethodParams(self, form):
        form.addParam("numLayers", params.IntParam, default=3, label="Layers")
        form.addParam("useFlag", params.BooleanParam, default=True, label="Flag")


def test_train_base_command_and_outputs(sim):
    """The generic training steps: command line, then z.npy, poses and consensus.mrc -> outputs."""
    from flexplugin.convert import matrixToPose
    from flexplugin.engine.io import write_mrc
    from flexplugin.engine.geometry import so3
    assert ProtFlexTrainBase.isBase() and not ProtFlexTrainDummy.isBase()
    project, sim_prot = sim
    prot = project.newProtocol(ProtFlexTrainDummy, zDim=4, numEpochs=2, boxSize=16, batchSize=8)
    prot.inputParticles.set(sim_prot)
    prot.inputParticles.setExtended("outputParticles")
    assert not prot.validate()
    project.saveProtocol(prot)
    prot.makePathsAndClean()
    args = [str(a) for a in prot._trainArgs()]
    assert args[:1] == ["dummy"] and args[args.index("--zdim") + 1] == "4"
    assert args[args.index("--box") + 1] == "16" and args[args.index("--batch-size") + 1] == "8"
    assert args[-3:] == ["--layers", "3", "--flag"] and "--resume" not in args

    n = sim_prot.outputParticles.getSize()
    z = np.arange(n * 4, dtype=np.float32).reshape(n, 4)
    rotations = so3.euler_to_matrix(np.zeros(n), np.full(n, 90.0), np.linspace(0, 90, n))
    shifts = np.tile([1.5, -3.0], (n, 1))
    os.makedirs(prot._outDir())
    np.save(prot._outDir("z.npy"), z)
    np.save(prot._outDir("rotations.npy"), rotations)
    np.save(prot._outDir("shifts_A.npy"), shifts)
    write_mrc(prot._outDir("consensus.mrc"), np.zeros((16, 16, 16), np.float32), 6.0)
    prot.createOutputStep(prot.numEpochs.get())

    flex = prot.outputParticles
    assert flex.getSize() == n and flex.hasCTF() and flex.hasAlignmentProj()
    info = flex.getFlexInfo()
    assert info.getProgName() == "dummy" and info.getAttr("zDim") == 4 and info.getAttr("boxSize") == 16
    items = [p.clone() for p in flex.iterItems(orderBy="id")]
    ids = [p.getObjId() for p in sim_prot.outputParticles.iterItems(orderBy="id")]
    assert [p.getObjId() for p in items] == ids
    np.testing.assert_allclose(items[7].getZFlex(), z[7])
    rot, shift = matrixToPose(items[7].getTransform().getMatrix(), flex.getSamplingRate())
    np.testing.assert_allclose(rot, rotations[7], atol=1e-6)
    np.testing.assert_allclose(shift, shifts[7], atol=1e-6)
    vol = prot.outputVolume
    assert abs(vol.getSamplingRate() - 6.0) < 1e-6 and vol.getFlexInfo().getProgName() == "dummy"
    assert prot.summary() and prot.methods()


def test_several_gpus_start_one_process_each(monkeypatch):
    monkeypatch.setitem(Plugin._vars, FLEXPLUGIN_ENV_ACTIVATION, "")
    words = shlex.split(Plugin.getEngineCommand("train", ["cryodrgn", "--ddp"], gpus=[0, 1], processes=2))
    assert words[0] == "CUDA_VISIBLE_DEVICES=0,1"
    assert words[2:8] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    assert words[8:] == ["flexplugin.engine.cli", "train", "cryodrgn", "--ddp"]
