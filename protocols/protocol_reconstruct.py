"""ProtFlexReconstruct: consensus map from particles with known poses (``flexplugin reconstruct``)."""
import os

import pyworkflow.protocol.params as params

from .protocol_base import ProtFlexEngineBase


class ProtFlexReconstruct(ProtFlexEngineBase):
    """Homogeneous reconstruction (direct Fourier inversion with CTF correction) from particles
    with known angles, shifts and CTF. Writes the map, two half maps (random halves or RELION's
    rlnRandomSubset) and the half-map FSC curve."""
    _label = "reconstruct"
    _possibleOutputs = {"outputVolume": "Volume"}

    def _defineParams(self, form):
        form.addSection(label="Input")
        self._defineGpuParams(form)
        self._defineParticlesParam(form)
        form.addParam("boxSize", params.IntParam, default=0, validators=[params.GE(0)],
                      label="Reconstruction box (px)",
                      help="Fourier-crop the images to this box before reconstructing "
                           "(0: the particles' own box). The pixel size grows accordingly.")
        form.addParam("maxParticles", params.IntParam, default=0, validators=[params.GE(0)],
                      expertLevel=params.LEVEL_ADVANCED, label="Maximum particles",
                      help="Use a random subset of this many particles (0: all).")
        form.addParam("invertContrast", params.BooleanParam, default=False,
                      expertLevel=params.LEVEL_ADVANCED, label="Invert contrast?",
                      help="Set when the protein is dark in the images (RELION expects it bright).")

    # ------------------------------------------------------------------------- steps
    def _insertAllSteps(self):
        self._insertFunctionStep(self.convertInputStep, needsGPU=False)
        self._insertFunctionStep(self.reconstructStep, needsGPU=True)
        self._insertFunctionStep(self.createOutputStep, needsGPU=False)

    def _mapPath(self, suffix=""):
        return self._getExtraPath("map%s.mrc" % suffix)

    def reconstructStep(self):
        args = ["--particles", self._particlesStar(), "--out", self._mapPath()]
        if self.boxSize.get():
            args += ["--box", self.boxSize.get()]
        if self.maxParticles.get():
            args += ["--max-particles", self.maxParticles.get()]
        if self.invertContrast:
            args.append("--invert")
        self._runEngine("reconstruct", args)

    def _outputSamplingRate(self):
        parts = self.inputParticles.get()
        box = self.boxSize.get() or parts.getXDim()
        return parts.getSamplingRate() * parts.getXDim() / box

    def createOutputStep(self):
        vol = self._newVolume(self._mapPath(), self._outputSamplingRate(),
                              halves=[self._mapPath("_half1"), self._mapPath("_half2")])
        self._defineOutputs(outputVolume=vol)
        self._defineSourceRelation(self.inputParticles, vol)

    # ------------------------------------------------------------------------- info
    def _validate(self):
        errors = ProtFlexEngineBase._validate(self)
        parts = self.inputParticles.get()
        box = self.boxSize.get()
        if parts is not None and box and (box > parts.getXDim() or box % 2):
            errors.append("The reconstruction box must be even and at most the particle box (%d)."
                          % parts.getXDim())
        return errors

    def _summary(self):
        summary = [self._inputSummary()]
        if self.hasAttribute("outputVolume"):
            summary.append("Map: %s (%.3f Å/px), half maps and FSC beside it."
                           % (os.path.basename(self.outputVolume.getFileName()),
                              self.outputVolume.getSamplingRate()))
            fsc = self._getExtraPath("map_fsc.txt")
            if os.path.exists(fsc):
                summary.append("Half-map FSC curve: %s" % fsc)
        return summary

    def _methods(self):
        if not self.hasAttribute("outputVolume"):
            return []
        return ["A consensus map was reconstructed from %d particles by direct Fourier inversion "
                "with CTF correction (flexplugin reconstruct), at %.3f Å/px."
                % (self.inputParticles.get().getSize(), self.outputVolume.getSamplingRate())]

    def _citations(self):
        return ["Scheres2012"]
