"""The Scipion plugin: where the engine environment lives, how it is installed and how it is run.

The engine (``flexplugin.engine``, torch) never runs inside Scipion's Python: every command is a
subprocess ``python -m flexplugin.engine.cli <command> ...`` started through ``protocol.runJob``
after the engine environment is activated. ``FLEXPLUGIN_ENV_ACTIVATION`` holds that activation:

- default with conda (Scipion's ``CONDA_ACTIVATION_CMD`` set): ``conda activate flexplugin-<version>``;
- default without conda: ``. <EM_ROOT>/flexplugin-<version>/bin/activate`` (a venv);
- empty: this interpreter (tests, development), still as a subprocess.

This module imports no torch: it only builds shell command lines.
"""
import os
import re
import shlex
import sys

import pwem
import pyworkflow as pw
import pyworkflow.utils as pwutils

from .constants import (ENGINE_ENV_NAME, ENGINE_MODULE, ENGINE_PYTHON, FLEXPLUGIN_ENV_ACTIVATION,
                        FLEXPLUGIN_TORCH_INDEX, PIP_DISTRIBUTION, TORCH_VERSION, TORCH_WHEELS_URL,
                        VERSION)

_SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INSTALLED_FLAG = "flexplugin-engine-installed"


def _q(path):
    """A path quoted for the shell (spaces, quotes, ``$`` ... are safe)."""
    return shlex.quote(str(path))


class Plugin(pwem.Plugin):
    _url = "https://github.com/flexplugin/scipion-em-flexplugin"
    _supportedVersions = [VERSION]
    _processingField = ["FLEXIBILITY"]

    # pyworkflow assumes the Plugin class lives in the package's __init__; ours is in plugin.py
    # (imported lazily, so that the engine environment needs no pwem).
    def getName(self):
        return __package__

    def getPath(self):
        return os.path.dirname(os.path.abspath(__file__))

    # ----------------------------------------------------------------------------- variables
    @classmethod
    def _defineVariables(cls):
        cls._defineVar(FLEXPLUGIN_ENV_ACTIVATION, cls.defaultActivation(),
                       description="Shell command activating the flexplugin engine environment "
                                   "(empty: run the engine with Scipion's own Python).")
        cls._defineVar(FLEXPLUGIN_TORCH_INDEX, cls.defaultTorchIndex(),
                       description="pip index holding the torch wheels for the engine environment "
                                   "(empty: pip's own configuration).")

    @classmethod
    def useConda(cls):
        """True when Scipion knows how to activate conda."""
        return bool(pw.Config.CONDA_ACTIVATION_CMD)

    @classmethod
    def venvHome(cls):
        """Folder of the engine venv when there is no conda."""
        return os.path.join(pwem.Config.EM_ROOT, ENGINE_ENV_NAME)

    @classmethod
    def venvActivation(cls, home=None):
        return ". %s" % _q(os.path.join(home or cls.venvHome(), "bin", "activate"))

    @classmethod
    def defaultActivation(cls):
        return ("conda activate %s" % ENGINE_ENV_NAME) if cls.useConda() else cls.venvActivation()

    @classmethod
    def defaultTorchIndex(cls):
        """The torch wheel index matching Scipion's CUDA settings (``CUDA_LIB``), CPU otherwise."""
        cudaLib = pwem.Config.CUDA_LIB
        if not cudaLib or not os.path.isdir(cudaLib):
            return TORCH_WHEELS_URL % "cpu"
        match = re.search(r"cuda-?(\d+)\.(\d+)", os.path.realpath(cudaLib))
        return TORCH_WHEELS_URL % ("cu%s%s" % match.groups() if match else "cu126")

    @classmethod
    def getActivationCmd(cls):
        """The activation command ('' = this interpreter), with conda's hook when it needs it."""
        activation = (cls.getVar(FLEXPLUGIN_ENV_ACTIVATION) or "").strip()
        if activation.startswith("conda "):
            activation = "%s %s" % (cls.getCondaActivationCmd(), activation)
        return activation

    @classmethod
    def getEnviron(cls):
        """The environment of engine jobs: Scipion's, without its PYTHONPATH when the engine has
        its own environment (Scipion's packages must not shadow the engine's numpy / torch)."""
        environ = pwutils.Environ(os.environ)
        if cls.getActivationCmd():
            environ.pop("PYTHONPATH", None)
        return environ

    # ----------------------------------------------------------------------------- running
    @classmethod
    def getEngineCommand(cls, command, args=(), gpus=None, processes=1):
        """The full shell line running ``flexplugin <command> <args>`` in the engine environment.

        ``gpus``: None leaves CUDA_VISIBLE_DEVICES alone; a list or a string ("0,1", "" for CPU)
        sets it. ``processes`` > 1 starts that many processes with torchrun (data-parallel
        training: add ``--ddp`` to the arguments). Every argument is quoted, so paths may hold
        spaces, quotes or ``$``.
        """
        activation = cls.getActivationCmd()
        python = "python" if activation else _q(sys.executable)
        if processes > 1:
            python += " -m torch.distributed.run --standalone --nproc_per_node %d" % processes
        line = "%s -m %s %s" % (python, ENGINE_MODULE, " ".join(_q(a) for a in [command] + list(args)))
        if gpus is not None:
            gpus = gpus if isinstance(gpus, str) else ",".join(str(g) for g in gpus)
            line = "CUDA_VISIBLE_DEVICES=%s %s" % (_q(gpus), line)
        return "%s && %s" % (activation, line) if activation else line

    @classmethod
    def runEngine(cls, protocol, command, args=(), gpus=None, processes=1):
        """Run an engine command as a job of ``protocol``: its output goes to the protocol's log and
        a non-zero exit fails the step."""
        logs = protocol.getLogPaths()[:2]             # stdout, stderr: where the job writes
        starts = [os.path.getsize(p) if os.path.exists(p) else 0 for p in logs]
        try:
            protocol.runJob(cls.getEngineCommand(command, args, gpus, processes), "", env=cls.getEnviron(),
                            numberOfMpi=1, numberOfThreads=1)
        except Exception as exc:
            # The engine ends a failure with one "error: <file or option>: <problem>" line in the
            # run's log; it becomes the run's error message (the GUI shows it), not the exit status.
            message = engineError(logs, starts)
            if message:
                raise RuntimeError("flexplugin %s failed: %s" % (command, message)) from exc
            raise

    # ----------------------------------------------------------------------------- installing
    @classmethod
    def enginePipSpec(cls):
        """What pip installs for the engine: this source tree in development mode, else the release."""
        if os.path.isfile(os.path.join(_SOURCE_DIR, "setup.py")):
            return "-e %s" % _q(_SOURCE_DIR + "[engine]")
        return _q("%s[engine]==%s" % (PIP_DISTRIBUTION, VERSION))

    @classmethod
    def getInstallCommand(cls, conda=None, home=None, torchIndex=None):
        """Shell line creating the engine environment and installing torch + the engine into it.

        ``conda``: use a conda env (default: when Scipion configures conda); ``home``: venv folder
        (default :meth:`venvHome`); ``torchIndex``: pip index of the torch wheels (default: the
        ``FLEXPLUGIN_TORCH_INDEX`` variable; "" = pip's own configuration).
        """
        conda = cls.useConda() if conda is None else conda
        torchIndex = cls.getVar(FLEXPLUGIN_TORCH_INDEX, "") if torchIndex is None else torchIndex
        torch = "python -m pip install %s" % _q("torch==%s" % TORCH_VERSION)
        if torchIndex:
            torch += " --extra-index-url %s" % _q(torchIndex)
        if conda:
            hook = cls.getCondaActivationCmd()
            create = ("%s conda create -y -n %s python=%s && %s conda activate %s"
                      % (hook, ENGINE_ENV_NAME, ENGINE_PYTHON, hook, ENGINE_ENV_NAME))
        else:
            home = home or cls.venvHome()
            create = "%s -m venv %s && %s" % (_q(sys.executable), _q(home), cls.venvActivation(home))
        return "%s && %s && python -m pip install %s" % (create, torch, cls.enginePipSpec())

    @classmethod
    def defineBinaries(cls, env):
        """``scipion installb flexplugin``: the engine environment (conda env or venv)."""
        conda = cls.useConda()
        command = cls.getInstallCommand(conda=conda, home=cls.venvHome())
        target = _INSTALLED_FLAG if conda else os.path.join("bin", "flexplugin")
        if conda:
            command += " && touch %s" % _INSTALLED_FLAG
        env.addPackage("flexplugin", version=VERSION, tar="void.tgz",
                       commands=[(command, [target])],
                       neededProgs=["conda"] if conda else [], default=True)


def engineError(logs, starts=None):
    """The last ``error: ...`` line the engine wrote in the log files ``logs`` (without the prefix)
    after the byte offsets ``starts`` (default: from the start), or None."""
    found = None
    for path, start in zip(logs, starts or [0] * len(logs)):
        try:
            with open(path, "rb") as f:
                f.seek(start)
                for raw in f:
                    line = raw.decode("utf-8", "replace")
                    if line.startswith("error: "):
                        found = line[len("error: "):].strip()
        except OSError:
            pass
    return found
