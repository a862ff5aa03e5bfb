"""ProtFlexDecode: maps of a trained model at chosen latent points (``flexplugin decode``)."""
import os

import numpy as np
import pyworkflow.protocol.params as params

from flexplugin.selection import read_ids

from .protocol_model_base import ProtFlexModelBase, flexZ

SOURCES = ["typed points", "file of points", "particle selection"]


class ProtFlexDecode(ProtFlexModelBase):
    """Decodes the maps of a trained model (any method) at latent points: typed in the form (one
    point per line), read from a text or .npy file, or the mean latent vector of a selection of
    particles saved from the landscape viewer (one particle id per line)."""
    _label = "decode maps"
    _possibleOutputs = {"outputVolumes": "SetOfVolumesFlex"}

    def _defineParams(self, form):
        form.addSection(label="Input")
        self._defineGpuParams(form)
        self._defineFlexParticlesParam(form, help="Output particles of a flexplugin training protocol: "
                                                  "the model decodes the maps.")
        form.addParam("source", params.EnumParam, choices=SOURCES, default=0,
                      display=params.EnumParam.DISPLAY_HLIST, label="Latent points from")
        form.addParam("zText", params.TextParam, default="", condition="source == 0",
                      label="Latent points",
                      help="One point per line, its zdim values separated by spaces or commas.")
        form.addParam("zFile", params.FileParam, default="", condition="source == 1",
                      label="File of latent points",
                      help="A text file (one point per line) or a .npy array of shape (n, zdim).")
        form.addParam("selectionFile", params.FileParam, default="", condition="source == 2",
                      label="Particle selection",
                      help="A text file of particle ids (as saved by the landscape viewer): one map "
                           "is decoded at the mean latent vector of those particles.")
        self._defineDecodeBoxParam(form)

    # ------------------------------------------------------------------------- steps
    def _insertAllSteps(self):
        self._insertFunctionStep(self.writePointsStep, needsGPU=False)
        self._insertFunctionStep(self.decodeStep, needsGPU=True)
        self._insertFunctionStep(self.createOutputStep, needsGPU=False)

    def _pointsFile(self):
        return self._getExtraPath("z_points.txt")

    def _points(self):
        """The latent points (n, zdim) the form asks for."""
        source = SOURCES[self.source.get()]
        if source == "typed points":
            rows = [line.replace(",", " ").split() for line in self.zText.get("").splitlines()]
            return np.array([[float(v) for v in r] for r in rows if r], dtype=np.float64)
        if source == "file of points":
            path = self.zFile.get()
            return np.load(path) if path.endswith(".npy") else np.loadtxt(path, ndmin=2)
        ids, z = flexZ(self._flexSet())
        wanted = set(read_ids(self.selectionFile.get()))
        return z[np.isin(ids, list(wanted))].mean(0, keepdims=True)

    def writePointsStep(self):
        np.savetxt(self._pointsFile(), np.atleast_2d(self._points()), fmt="%.6g")

    def decodeStep(self):
        self._runEngine("decode", ["--model", self._modelDir(), "--z-file", self._pointsFile(),
                                   "--out", self._getExtraPath("maps")] + self._decodeArgs())

    def createOutputStep(self):
        folder = self._getExtraPath("maps")
        maps = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".mrc"))
        volumes = self._volumeSet("", maps, np.loadtxt(self._pointsFile(), ndmin=2))
        self._defineOutputs(outputVolumes=volumes)
        self._defineSourceRelation(self.inputParticles, volumes)

    # ------------------------------------------------------------------------- info
    def _validate(self):
        errors = ProtFlexModelBase._validate(self)
        if errors:
            return errors
        source = SOURCES[self.source.get()]
        zdim = int(self._flexInfo().getAttr("zDim"))
        if source != "typed points":
            path = (self.zFile if source == "file of points" else self.selectionFile).get()
            if not path or not os.path.exists(path):
                return ["The %s file is missing: %s" % (source, path or "(none given)")]
        try:
            points = np.atleast_2d(self._points())
        except (ValueError, OSError) as exc:
            return ["Cannot read the latent points (%s)." % exc]
        if source == "particle selection" and not np.isfinite(points).all():
            errors.append("None of the selected particle ids is in the input set.")
        elif points.size == 0:
            errors.append("No latent point given.")
        elif points.shape[1] != zdim:
            errors.append("The latent points have %d values, the model's latent dimension is %d."
                          % (points.shape[1], zdim))
        return errors

    def _summary(self):
        summary = [self._modelSummary()]
        if self.hasAttribute("outputVolumes"):
            summary.append("%d maps decoded (%s)." % (self.outputVolumes.getSize(), SOURCES[self.source.get()]))
        return summary

    def _methods(self):
        return ["Maps were decoded from the %s model at chosen latent points with flexplugin."
                % self._methodName()]
