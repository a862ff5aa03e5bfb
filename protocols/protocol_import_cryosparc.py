"""ProtFlexImportCryoSparc: cryoSPARC particles (.cs + passthrough) without pyem."""
import os

import pyworkflow.protocol.params as params
from pwem.protocols import ProtImport

from flexplugin.convert import readParticles


class ProtFlexImportCryoSparc(ProtImport):
    """Imports a cryoSPARC particle file (e.g. ``J12_particles.cs`` of a refinement) and, when the
    job wrote one, its ``*_passthrough_particles.cs``: images (referenced in place, not copied), CTF
    and 3D alignment. The .cs file is read directly (numpy), so pyem is not needed. Image paths
    relative to the cryoSPARC project are looked up next to the .cs file and in its parents."""
    _label = "import cryoSPARC particles"
    _possibleOutputs = {"outputParticles": "SetOfParticles"}

    def _defineParams(self, form):
        form.addSection(label="Import")
        form.addParam("csFile", params.PathParam, important=True, label="Particles .cs file",
                      help="cryoSPARC particle metadata (alignments3D/pose, ctf/*, blob/* fields).")
        form.addParam("passthroughFile", params.PathParam, allowsNull=True,
                      label="Passthrough .cs file (optional)",
                      help="The job's *_passthrough_particles.cs holding the fields the main file "
                           "lacks (often blob/* and ctf/*).")

    def _insertAllSteps(self):
        self._insertFunctionStep(self.importStep)

    def _passthrough(self):
        return self.passthroughFile.get() or None

    def importStep(self):
        parts = readParticles(self._createSetOfParticles(), self.csFile.get(),
                              passthrough=self._passthrough())
        self._defineOutputs(outputParticles=parts)

    def _validate(self):
        errors = []
        for label, path in (("particles", self.csFile.get()), ("passthrough", self._passthrough())):
            if path is None and label == "passthrough":
                continue
            if not path or not os.path.isfile(path):
                errors.append("The %s file %s does not exist." % (label, path or ""))
            elif not path.endswith(".cs"):
                errors.append("The %s file %s is not a cryoSPARC .cs file." % (label, path))
        return errors

    def _summary(self):
        if not self.hasAttribute("outputParticles"):
            return ["Importing %s" % self.csFile.get()]
        parts = self.outputParticles
        return ["Imported %d particles (box %d, %.3f Å/px, CTF: %s, alignment: %s) from %s."
                % (parts.getSize(), parts.getXDim(), parts.getSamplingRate(), parts.hasCTF(),
                   parts.getAlignment(), self.csFile.get())]

    def _methods(self):
        return ["Particles were imported from the cryoSPARC file %s." % os.path.basename(self.csFile.get() or "")]

    def _citations(self):
        return ["Punjani2017"]
