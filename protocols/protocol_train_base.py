"""ProtFlexTrainBase: the shared form and steps of every training protocol.

A method protocol is a small subclass::

    class ProtFlexCryoDrgn(ProtFlexTrainBase):
        _label = "train cryoDRGN"
        _method = "cryodrgn"                        # flexplugin train <method>
        _methodOptions = {"numLayers": "--layers"}  # form parameter -> engine option

        def _defineMethodParams(self, form):
            form.addParam("numLayers", params.IntParam, default=3, label="Layers")

It runs ``flexplugin train <method> --particles P --out DIR --zdim Z --epochs N [--box D]
[--batch-size B] [--mask M] [--resume] <method options>`` and registers ``OUT/z.npy`` (+ the optional
``OUT/rotations.npy`` + ``OUT/shifts_A.npy``) as a SetOfParticlesFlex and ``OUT/consensus.mrc`` as a VolumeFlex.
"""
import os

import numpy as np
import pyworkflow.protocol.params as params
from pwem.objects.data_flexhub import VolumeFlex
from pwem.protocols.protocol_base_flexhub import ProtFlexBase
from pyworkflow.protocol.constants import MODE_RESUME

from flexplugin.constants import CONSENSUS_MAP, Z_FILE
from flexplugin.convert import fillFlexParticles, loadPoses

from .protocol_base import ProtFlexEngineBase


class ProtFlexTrainBase(ProtFlexEngineBase, ProtFlexBase):
    """Base of the training protocols (not runnable: subclasses set ``_label`` and ``_method``)."""
    _label = None
    _method = None          # engine method name (flexplugin train <method>)
    _methodOptions = {}     # form parameter name -> engine option (booleans become flags)
    _usesMask = False       # the method focuses on a mask given with --mask
    _possibleOutputs = {"outputParticles": "SetOfParticlesFlex", "outputVolume": "VolumeFlex"}

    # ------------------------------------------------------------------------- form
    def _defineParams(self, form):
        form.addSection(label="Input")
        self._defineGpuParams(form)
        self._defineParticlesParam(form)
        if self._usesMask:
            form.addParam("inputMask", params.PointerParam, pointerClass="VolumeMask", allowsNull=True,
                          label="Mask (optional)", help="Restricts the heterogeneity to this region.")
        form.addParam("boxSize", params.IntParam, default=0, validators=[params.GE(0)],
                      label="Training box (px)",
                      help="Fourier-crop the particles to this even box for training "
                           "(0: the particles' own box). Smaller is faster, e.g. 64 or 128.")
        form.addSection(label="Training")
        form.addParam("zDim", params.IntParam, default=8, validators=[params.Range(1, 256)],
                      label="Latent dimension", help="Size of each particle's latent vector z.")
        form.addParam("numEpochs", params.IntParam, default=20, validators=[params.GE(1)],
                      label="Epochs", help="Passes over the particle set.")
        form.addParam("batchSize", params.IntParam, default=0, validators=[params.GE(0)],
                      expertLevel=params.LEVEL_ADVANCED, label="Batch size",
                      help="Particles per step (0: the method's default).")
        form.addSection(label="Method")
        self._defineMethodParams(form)

    def _defineMethodParams(self, form):
        """Hook: a method adds its own parameters (listed in ``_methodOptions``)."""

    def _methodArgs(self):
        """Hook: engine options of the method, by default from ``_methodOptions`` (an EnumParam
        passes the text of its choice)."""
        args = []
        for name, option in self._methodOptions.items():
            value = getattr(self, name).get()
            param = self.getParam(name)
            if isinstance(param, params.EnumParam):
                value = param.choices[value]
            if isinstance(value, bool):
                args += [option] if value else []
            elif value is not None:
                args += [option, value]
        return args

    # ------------------------------------------------------------------------- steps
    def _insertAllSteps(self):
        self._insertFunctionStep(self.convertInputStep, needsGPU=False)
        # The epoch count is the step's argument: "Continue" with more epochs trains on from the
        # last checkpoint (an interrupted step also re-runs, with --resume).
        self._insertFunctionStep(self.trainStep, self.numEpochs.get(), needsGPU=True)
        self._insertFunctionStep(self.createOutputStep, self.numEpochs.get(), needsGPU=False)

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
        if self._usesMask and self.inputMask.get() is not None:
            args += ["--mask", os.path.abspath(self.inputMask.get().getFileName())]
        if self._isContinued():
            args.append("--resume")
        return args + self._methodArgs()

    def trainStep(self, epochs):
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
        return errors

    def _summary(self):
        summary = [self._inputSummary(), "Method: %s, latent dimension %d, %d epochs, box %s."
                   % (self._method, self.zDim.get(), self.numEpochs.get(), self.boxSize.get() or "full")]
        if self.hasAttribute("outputParticles"):
            summary.append("Latent vectors of %d particles registered." % self.outputParticles.getSize())
        return summary

    def _methods(self):
        return ["The particles were analysed with %s (flexplugin train), latent dimension %d, for %d "
                "epochs." % (self._method, self.zDim.get(), self.numEpochs.get())]
