"""ProtFlexPredict: a trained model applied to other particles (``flexplugin encode``)."""
import numpy as np

from flexplugin.constants import Z_FILE
from flexplugin.convert import fillFlexParticles, loadPoses

from .protocol_model_base import ProtFlexModelBase


class ProtFlexPredict(ProtFlexModelBase):
    """Encodes a particle set with a model trained on other particles (any method): for example,
    train on a subset for speed, then place every particle of the full set on the landscape. The
    images are prepared as in training (box, contrast, window). Methods that estimate poses also
    give each particle its estimated alignment."""
    _label = "predict latent vectors"
    _possibleOutputs = {"outputParticles": "SetOfParticlesFlex"}

    def _defineParams(self, form):
        form.addSection(label="Input")
        self._defineGpuParams(form)
        self._defineFlexParticlesParam(form, name="inputModel", label="Trained model",
                                       help="Output particles of a flexplugin training protocol: "
                                            "their model encodes the new particles.")
        self._defineParticlesParam(form)

    def _flexSet(self):
        return self.inputModel.get()

    # ------------------------------------------------------------------------- steps
    def _insertAllSteps(self):
        self._insertFunctionStep(self.convertInputStep, needsGPU=False)
        self._insertFunctionStep(self.encodeStep, needsGPU=True)
        self._insertFunctionStep(self.createOutputStep, needsGPU=False)

    def _zFile(self):
        return self._getExtraPath("predict", Z_FILE)

    def encodeStep(self):
        self._runEngine("encode", ["--model", self._modelDir(), "--particles", self._particlesStar(),
                                   "--out", self._zFile()])

    def createOutputStep(self):
        inputSet = self.inputParticles.get()
        flexSet = fillFlexParticles(self._createSetOfParticlesFlex(progName=self._methodName()), inputSet,
                                    np.load(self._zFile()), self._methodName(), self._modelDir(),
                                    self._trainingBox(), poses=loadPoses(self._getExtraPath("predict")))
        self._defineOutputs(outputParticles=flexSet)
        self._defineSourceRelation(self.inputParticles, flexSet)
        self._defineSourceRelation(self.inputModel, flexSet)

    # ------------------------------------------------------------------------- info
    def _validate(self):
        errors = ProtFlexModelBase._validate(self)
        parts, model = self.inputParticles.get(), self.inputModel.get()
        if parts is None:
            return errors + ["Input particles are missing."]
        if model is not None and not errors:
            if abs(parts.getSamplingRate() * parts.getXDim() - model.getSamplingRate() * model.getXDim()) \
                    > 0.01 * model.getSamplingRate() * model.getXDim():
                errors.append("The particles' box (%d px at %.3f Å) differs in size from the training "
                              "particles' (%d px at %.3f Å)." % (parts.getXDim(), parts.getSamplingRate(),
                                                                 model.getXDim(), model.getSamplingRate()))
        if parts.getXDim() is not None and parts.getXDim() < self._trainingBox():
            errors.append("The particles (%d px) are smaller than the training box (%d px)."
                          % (parts.getXDim(), self._trainingBox()))
        return errors

    def _summary(self):
        summary = [self._modelSummary(), self._inputSummary()]
        if self.hasAttribute("outputParticles"):
            summary.append("Latent vectors of %d particles predicted." % self.outputParticles.getSize())
        return summary

    def _methods(self):
        return ["Latent vectors of the particles were predicted with a %s model trained with flexplugin."
                % self._methodName()]
