"""The engine in its own environment: build a venv with the plugin's own install command (torch
from pip's configured index, as `pip install torch==<pin>`), then run a protocol through it."""
import os
import subprocess

import pytest
from scipion_helpers import launch

from flexplugin import Plugin
from flexplugin.constants import ENGINE_ENV_NAME, FLEXPLUGIN_ENV_ACTIVATION


@pytest.mark.slow
def test_protocol_runs_in_a_separate_engine_venv(sim, tmp_path_factory, monkeypatch):
    from flexplugin.protocols import ProtFlexReconstruct
    project, sim_prot = sim
    home = str(tmp_path_factory.mktemp("em root") / ENGINE_ENV_NAME)
    install = Plugin.getInstallCommand(conda=False, home=home, torchIndex="")
    proc = subprocess.run(["bash", "-c", install], capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    engine_python = os.path.join(home, "bin", "python")
    assert os.path.exists(os.path.join(home, "bin", "flexplugin"))

    # The protocol's own process reads the variable when Scipion registers the plugin.
    monkeypatch.setenv(FLEXPLUGIN_ENV_ACTIVATION, Plugin.venvActivation(home))
    rec = launch(project, ProtFlexReconstruct, inputs={"inputParticles": (sim_prot, "outputParticles")},
                 boxSize=16, maxParticles=300)
    log = open(os.path.join(project.getPath(), rec.getStdoutLog())).read()
    command = next(line for line in log.splitlines() if "flexplugin.engine.cli reconstruct" in line)
    assert Plugin.venvActivation(home) + " && " in command and " python -m flexplugin" in command
    assert "flexplugin reconstruct: done" in log
    assert rec.outputVolume.getDim() == (16, 16, 16)
    # The engine environment is not Scipion's: its own python and its own torch.
    where = subprocess.run([engine_python, "-c", "import torch, sys; print(sys.prefix, torch.__version__)"],
                           capture_output=True, text=True).stdout
    assert where.startswith(home) and "2.13.0" in where
