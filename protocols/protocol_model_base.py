"""ProtFlexModelBase: what the method-agnostic protocols that use a trained model share.

A trained model is reached through a ``SetOfParticlesFlex`` written by any training protocol:
its FlexInfo holds the method name, the training folder (``modelPath``), the training box and
the latent dimension. The analysis, decode, subset and predict protocols read only that, so they
work unchanged for every method (the engine's ``encode`` / ``decode_volume`` do the rest).
"""
import os

import numpy as np
import pyworkflow.protocol.params as params
from pwem.objects.data_flexhub import VolumeFlex
from pwem.protocols.protocol_base_flexhub import ProtFlexBase

from flexplugin.constants import Z_FILE

from .protocol_base import ProtFlexEngineBase


def flexZ(flexSet):
    """(object ids (N,), latent vectors (N, zdim)) of a SetOfParticlesFlex, in id order."""
    ids, zs = [], []
    for particle in flexSet.iterItems(orderBy="id"):
        ids.append(particle.getObjId())
        zs.append(particle.getZFlex())
    return np.array(ids, dtype=np.int64), np.array(zs, dtype=np.float64).reshape(len(zs), -1)


class ProtFlexModelBase(ProtFlexEngineBase, ProtFlexBase):
    """Base of the protocols using a trained model (not runnable)."""
    _label = None
    _requiresAlignment = False

    # ------------------------------------------------------------------------- form
    def _defineFlexParticlesParam(self, form, label="Particles with latent vectors", name="inputParticles",
                                  help=None):
        form.addParam(name, params.PointerParam, pointerClass="SetOfParticlesFlex", important=True,
                      label=label,
                      help=help or "Output particles of a flexplugin training protocol (any method): "
                                   "they carry each particle's latent vector z and the trained model.")

    def _defineDecodeBoxParam(self, form):
        form.addParam("decodeBox", params.IntParam, default=0, validators=[params.GE(0)],
                      expertLevel=params.LEVEL_ADVANCED, label="Map box (px)",
                      help="Decode the maps at this even box (0: the training box). Smaller is "
                           "faster; the voxel size grows accordingly.")

    # ------------------------------------------------------------------------- model
    def _flexSet(self):
        return self.inputParticles.get()

    def _flexInfo(self):
        return self._flexSet().getFlexInfo()

    def _modelDir(self):
        return self._flexInfo().getAttr("modelPath")

    def _methodName(self):
        return self._flexInfo().getProgName()

    def _trainingBox(self):
        return int(self._flexInfo().getAttr("boxSize"))

    def _mapBox(self):
        return self.decodeBox.get() or self._trainingBox()

    def _mapSamplingRate(self):
        parts = self._flexSet()
        return parts.getSamplingRate() * parts.getXDim() / self._mapBox()

    def _decodeArgs(self):
        return ["--box", self.decodeBox.get()] if self.decodeBox.get() else []

    def _flexVolume(self, path, z=None, zred=None):
        """A VolumeFlex for ``path`` carrying the model's FlexInfo and its latent point."""
        vol = self._newVolume(os.path.abspath(path), self._mapSamplingRate(), volumeClass=VolumeFlex,
                              progName=self._methodName())
        vol.getFlexInfo().copyInfo(self._flexInfo())
        if z is not None:
            vol.setZFlex(np.atleast_1d(z).tolist())
        if zred is not None:
            vol.setZRed(np.atleast_1d(zred).tolist())
        return vol

    def _volumeSet(self, suffix, paths, zs):
        """A SetOfVolumesFlex of the maps ``paths`` decoded at ``zs``."""
        volumes = self._createSetOfVolumesFlex(suffix=suffix, progName=self._methodName())
        volumes.setSamplingRate(self._mapSamplingRate())
        volumes.getFlexInfo().copyInfo(self._flexInfo())
        for path, z in zip(paths, zs):
            volumes.append(self._flexVolume(path, z))
        return volumes

    def writeZStep(self):
        """The input's latent vectors (id order) and ids, as the engine reads them."""
        ids, z = flexZ(self._flexSet())
        np.save(self._getExtraPath(Z_FILE), z)
        np.save(self._getExtraPath("ids.npy"), ids)

    # ------------------------------------------------------------------------- info
    def _validate(self):
        errors = []
        parts = self._flexSet()
        if parts is None:
            return ["Input particles are missing."]
        info = parts.getFlexInfo()
        if not hasattr(info, "modelPath") or not os.path.exists(info.getAttr("modelPath")):
            errors.append("The input particles do not come from a flexplugin training run (or its "
                          "model folder was deleted): no trained model to use.")
        box = self.decodeBox.get() if hasattr(self, "decodeBox") else 0
        if box and not errors and (box % 2 or box > self._trainingBox()):
            errors.append("The map box must be even and at most the training box (%d)."
                          % self._trainingBox())
        return errors

    def _modelSummary(self):
        parts = self._flexSet()
        if parts is None:
            return ""
        return "Model: %s (%s), %d particles." % (self._methodName(), self._modelDir(), parts.getSize())
