"""ProtFlexTrainBase: the shared form and steps of every training protocol.

A method protocol is a small subclass::

    class ProtFlexCryoDrgn(ProtFlexTrainBase):
        _label = "train cryoDRGN"
        _method = "cryodrgn"                        # flexplugin train <method>
        _config = configs.CryoDRGNConfig            # the method's hyper-parameters and their defaults
        _methodOptions = {"numLayers": "--layers"}  # form parameter -> engine option

        def _defineMethodParams(self, form):
            form.addParam("numLayers", params.IntParam, default=self._optionDefault("numLayers"),
                          label="Layers")

The defaults of the form are the engine's: ``_optionDefault`` reads the field of the method's
Config (:mod:`flexplugin.engine.configs`, which imports no torch) behind the parameter's option.

It runs ``flexplugin train <method> --particles P --out DIR --zdim Z --epochs N [--box D]
[--batch-size B] [--invert] [--no-window] [--mask M] [--reference R] [--structure S] [--resume]
<method options>`` and registers ``OUT/z.npy`` (+ the optional ``OUT/rotations.npy`` +
``OUT/shifts_A.npy``) as a SetOfParticlesFlex and ``OUT/consensus.mrc`` as a VolumeFlex. The
optional inputs a method takes are declared in ``_optionalInputs`` / ``_requiredInputs`` (keys of
``INPUT_PARAMS``).
"""
import dataclasses
import os

import numpy as np
import pyworkflow.protocol.params as params
from pwem.objects.data_flexhub import VolumeFlex
from pwem.protocols.protocol_base_flexhub import ProtFlexBase
from pyworkflow.protocol.constants import MODE_RESUME

from flexplugin.constants import CONFIG_JSON, CONSENSUS_MAP, Z_FILE
from flexplugin.convert import fillFlexParticles, loadPoses
from flexplugin.engine import configs

from .protocol_base import ProtFlexEngineBase

# Optional inputs of the training protocols: key -> (form parameter, class, engine option, label, help)
INPUT_PARAMS = {
    "mask": ("inputMask", "VolumeMask", "--mask", "Mask",
             "Soft mask (box and pixel size of the particles) of the region where the method looks "
             "for conformational change; outside it the map stays the reference."),
    "reference": ("inputReference", "Volume", "--reference", "Reference map",
                  "Consensus map of the particles (same box and pixel size); the method learns the "
                  "changes from it instead of learning the map from scratch."),
    "atomic_model": ("inputStructure", "AtomStruct", "--structure", "Atomic model",
                     "PDB/mmCIF model fitted into the particles' consensus map (map origin at voxel 0)."),
}


class EmptyOrGE(params.Conditional):
    """Validator of an optional number: empty (the engine's default) or at least ``threshold``."""

    def __init__(self, threshold):
        params.Conditional.__init__(self, "Value should be empty or at least %s" % threshold,
                                    allowsNull=True)
        self._condition = lambda value: value >= threshold


class ProtFlexTrainBase(ProtFlexEngineBase, ProtFlexBase):
    """Base of the training protocols (not runnable: subclasses set ``_label`` and ``_method``)."""
    _label = None
    _method = None          # engine method name (flexplugin train <method>)
    _trainsOnGpu = True     # the form offers the CPU fall-back choice
    _config = configs.BaseConfig  # the method's Config: the defaults of the form's parameters
    _defaultEpochs = 20     # the form's default number of epochs
    _methodOptions = {}     # form parameter name -> engine option (a boolean gives --x / --no-x)
    _optionalInputs = ()    # optional inputs the method takes (keys of INPUT_PARAMS)
    _requiredInputs = ()    # inputs it cannot do without
    _possibleOutputs = {"outputParticles": "SetOfParticlesFlex", "outputVolume": "VolumeFlex"}

    # ------------------------------------------------------------------------- form
    def _defineParams(self, form):
        form.addSection(label="Input")
        self._defineGpuParams(form)
        self._defineParticlesParam(form)
        for key in self._optionalInputs + self._requiredInputs:
            name, pointerClass, _, label, help = INPUT_PARAMS[key]
            required = key in self._requiredInputs
            form.addParam(name, params.PointerParam, pointerClass=pointerClass, allowsNull=not required,
                          label=label if required else "%s (optional)" % label, help=help)
        form.addParam("boxSize", params.IntParam, default=0, validators=[params.GE(0)],
                      label="Training box (px)",
                      help="Fourier-crop the particles to this even box for training "
                           "(0: the particles' own box). Smaller is faster, e.g. 64 or 128.")
        form.addParam("invertContrast", params.BooleanParam, default=False, label="Invert contrast?",
                      help="Set when the protein is dark in the images (the methods expect it bright, "
                           "as RELION writes particles). The trained model keeps the setting: later "
                           "encoding and decoding read images the same way.")
        form.addParam("softWindow", params.BooleanParam, default=True, expertLevel=params.LEVEL_ADVANCED,
                      label="Soft circular window?",
                      help="Multiply the images by a soft circular mask: 1 inside 85% of the box "
                           "radius, a cosine edge falling to 0 at 99%, which removes the noise and "
                           "neighbouring particles in the corners. No: the whole box is used (for "
                           "particles that fill it).")
        form.addSection(label="Training")
        defaults = self._configDefaults()
        form.addParam("zDim", params.IntParam, default=defaults["zdim"], validators=[params.Range(1, 256)],
                      label="Latent dimension", help="Size of each particle's latent vector z.")
        form.addParam("numEpochs", params.IntParam, default=self._defaultEpochs, validators=[params.GE(1)],
                      label="Epochs", help="Passes over the particle set.")
        form.addParam("batchSize", params.IntParam, default=0, validators=[params.GE(0)],
                      expertLevel=params.LEVEL_ADVANCED, label="Batch size",
                      help="Particles per step (0: the method's default, %d)." % defaults["batch_size"])
        form.addSection(label="Method")
        self._defineMethodParams(form)

    def _givenInputs(self):
        """{input key: the Scipion object} of the optional inputs the user gave."""
        given = {}
        for key in self._optionalInputs + self._requiredInputs:
            obj = getattr(self, INPUT_PARAMS[key][0]).get()
            if obj is not None:
                given[key] = obj
        return given

    def _defineMethodParams(self, form):
        """Hook: a method adds its own parameters (listed in ``_methodOptions``, with their defaults
        from ``_optionDefault``)."""

    @classmethod
    def _configDefaults(cls):
        """{field: default} of the method's Config dataclass."""
        return {f.name: f.default for f in dataclasses.fields(cls._config)}

    @classmethod
    def _optionDefault(cls, name):
        """The engine's default of form parameter ``name`` (a key of ``_methodOptions``): the Config
        field behind its option (``--enc-layers`` -> ``enc_layers``); ``--no-x`` for a boolean field
        ``x`` is its negation. An EnumParam takes the index of this value in its choices."""
        option = cls._methodOptions[name]
        defaults = cls._configDefaults()
        field = option[2:].replace("-", "_")
        if field not in defaults and option.startswith("--no-"):
            return not defaults[field[3:]]
        return defaults[field]

    def _methodArgs(self):
        """Hook: engine options of the method, by default from ``_methodOptions`` (an EnumParam
        passes the text of its choice)."""
        args = []
        for name, option in self._methodOptions.items():
            value = getattr(self, name).get()
            param = self.getParam(name)
            if isinstance(param, params.EnumParam):
                value = param.choices[value]
            if isinstance(value, bool):       # engine switches exist as --x and --no-x
                negated = "--" + option[5:] if option.startswith("--no-") else "--no-" + option[2:]
                args += [option if value else negated]
            elif value is not None:
                args += [option, value]
        return args

    # ------------------------------------------------------------------------- steps
    def _insertAllSteps(self):
        self._insertFunctionStep(self.convertInputStep, needsGPU=False)
        # The epoch count is the step's argument: "Continue" with more epochs trains on from the
        # last checkpoint (an interrupted step also re-runs, with --resume).
        self._insertFunctionStep(self.trainStep, self.numEpochs.get(), needsGPU=True)
        for step in self._resultSteps():
            self._insertFunctionStep(step, self.numEpochs.get(), needsGPU=True)
        self._insertFunctionStep(self.createOutputStep, self.numEpochs.get(), needsGPU=False)

    def _resultSteps(self):
        """Hook: engine steps of a method after training (each takes the epoch count)."""
        return []

    def _methodOutputs(self, flexSet):
        """Hook: a method's own outputs besides the particles and the consensus map (a dict)."""
        return {}

    def _outDir(self, *paths):
        return self._getExtraPath("train", *paths)

    def _isContinued(self):
        """Scipion's "Continue" on a run that already has training output: resume from it."""
        return (self.runMode.get() == MODE_RESUME and os.path.isdir(self._outDir())
                and bool(os.listdir(self._outDir())))

    def _trainArgs(self):
        args = [self._method, "--particles", self._particlesStar(), "--out", self._outDir(),
                "--zdim", self.zDim.get(), "--epochs", self.numEpochs.get()]
        if self.boxSize.get():
            args += ["--box", self.boxSize.get()]
        if self.batchSize.get():
            args += ["--batch-size", self.batchSize.get()]
        if self.invertContrast:
            args.append("--invert")
        if not self.softWindow.get(True):
            args.append("--no-window")
        for key, obj in self._givenInputs().items():
            args += [INPUT_PARAMS[key][2], os.path.abspath(obj.getFileName())]
        if self._isContinued():
            args.append("--resume")
        if self.useGpu and not self.cpuFallback:
            args += ["--device", "cuda"]     # the engine stops with one clear line without CUDA
        return args + self._methodArgs()

    def trainStep(self, epochs):
        # Several GPUs: one data-parallel process per GPU (torchrun + DistributedDataParallel).
        gpus = len(self._gpus() or [])
        if gpus > 1:
            self._runEngine("train", self._trainArgs() + ["--ddp"], processes=gpus)
        else:
            self._runEngine("train", self._trainArgs())

    def _trainingBox(self):
        return self.boxSize.get() or self.inputParticles.get().getXDim()

    def createOutputStep(self, epochs):
        inputSet = self.inputParticles.get()
        poses = loadPoses(self._outDir())
        flexSet = fillFlexParticles(self._createSetOfParticlesFlex(progName=self._method), inputSet,
                                    np.load(self._outDir(Z_FILE)), self._method, self._outDir(),
                                    self._trainingBox(), poses=poses)
        outputs = dict(outputParticles=flexSet)
        if os.path.exists(self._outDir(CONSENSUS_MAP)):
            apix = inputSet.getSamplingRate() * inputSet.getXDim() / self._trainingBox()
            vol = self._newVolume(self._outDir(CONSENSUS_MAP), apix, volumeClass=VolumeFlex,
                                  progName=self._method)
            vol.getFlexInfo().copyInfo(flexSet.getFlexInfo())
            outputs["outputVolume"] = vol
        outputs.update(self._methodOutputs(flexSet))
        self._defineOutputs(**outputs)
        for output in outputs.values():
            self._defineSourceRelation(self.inputParticles, output)

    # ------------------------------------------------------------------------- info
    def _validate(self):
        errors = ProtFlexEngineBase._validate(self)
        parts = self.inputParticles.get()
        box = self.boxSize.get()
        if parts is not None and box and (box % 2 or box > parts.getXDim()):
            errors.append("The training box must be even and at most the particle box (%d)."
                          % parts.getXDim())
        for key in self._requiredInputs:
            if getattr(self, INPUT_PARAMS[key][0]).get() is None:
                errors.append("%s is required." % INPUT_PARAMS[key][3])
        for key, obj in self._givenInputs().items():
            if parts is not None and hasattr(obj, "getXDim"):      # maps: the particles' box and pixel
                if obj.getXDim() != parts.getXDim() or \
                        abs(obj.getSamplingRate() - parts.getSamplingRate()) > 0.01 * parts.getSamplingRate():
                    errors.append("%s: %d px at %.3f Å/px, the particles are %d px at %.3f Å/px."
                                  % (INPUT_PARAMS[key][3], obj.getXDim(), obj.getSamplingRate(),
                                     parts.getXDim(), parts.getSamplingRate()))
        return errors

    def _summary(self):
        epochs = self.numEpochs.get()
        box = ("training box %d px" % self.boxSize.get() if self.boxSize.get()
               else "at the particles' own box")
        summary = [self._inputSummary(), "Method: %s, latent dimension %d, %d epoch%s, %s."
                   % (self._method, self.zDim.get(), epochs, "" if epochs == 1 else "s", box)]
        device = self._trainedDevice()
        if device:
            summary.append("Trained on %s." % device)
            if self.useGpu and device == "cpu":
                summary.append("WARNING: a GPU was asked for (Use GPU: Yes) but none was available to "
                               "the engine, so it trained on the CPU (see the log).")
        if self.hasAttribute("outputParticles"):
            summary.append("Latent vectors of %d particles registered." % self.outputParticles.getSize())
        return summary

    def _trainedDevice(self):
        """The device the engine trained on ("cpu", "cuda", ...) from its config.json, or None."""
        import json
        try:
            with open(self._outDir(CONFIG_JSON)) as f:
                return json.load(f).get("device")
        except (OSError, ValueError):
            return None

    def _methods(self):
        return ["The particles were analysed with %s (flexplugin train), latent dimension %d, for %d "
                "epochs." % (self._method, self.zDim.get(), self.numEpochs.get())]
