"""ProtFlexSubset: particles chosen on the landscape, back into the workflow."""
import pyworkflow.protocol.params as params

from flexplugin.selection import read_ids, write_ids

from .protocol_model_base import ProtFlexModelBase

SOURCES = ["clusters", "particle selection"]


class ProtFlexSubset(ProtFlexModelBase):
    """Makes a particle subset from chosen k-means clusters of a landscape analysis or from a
    selection saved in the landscape viewer (a text file of particle ids). The subset keeps the
    latent vectors, landscape coordinates and alignment, so it can be refined, analysed again or
    exported to RELION / cryoSPARC."""
    _label = "landscape subset"
    _possibleOutputs = {"outputParticles": "SetOfParticlesFlex"}

    def _defineParams(self, form):
        form.addSection(label="Input")
        self._defineFlexParticlesParam(form, help="Particles with latent vectors (a training or "
                                                  "landscape analysis output) to take the subset from.")
        form.addParam("source", params.EnumParam, choices=SOURCES, default=1,
                      display=params.EnumParam.DISPLAY_HLIST, label="Subset from")
        form.addParam("inputClasses", params.PointerParam, pointerClass="SetOfClassesFlex", allowsNull=True,
                      condition="source == 0", label="Landscape classes",
                      help="k-means classes of a landscape analysis.")
        form.addParam("classIds", params.StringParam, default="", condition="source == 0",
                      label="Class ids", help="Classes to keep, e.g. '1 3 4' or '2-5'.")
        form.addParam("selectionFile", params.FileParam, default="", condition="source == 1",
                      label="Particle selection",
                      help="A text file of particle ids, one per line (the landscape viewer's "
                           "'Create subset' writes one and fills this form).")
        form.addParam("subsetName", params.StringParam, default="", label="Subset name",
                      help="A label shown in the summary (optional).")

    # ------------------------------------------------------------------------- steps
    def _insertAllSteps(self):
        self._insertFunctionStep(self.createOutputStep, needsGPU=False)

    def _classIds(self):
        ids = []
        for token in self.classIds.get("").replace(",", " ").split():
            a, _, b = token.partition("-")
            ids.extend(range(int(a), int(b or a) + 1))
        return ids

    def _wantedIds(self):
        if SOURCES[self.source.get()] == "particle selection":
            return set(read_ids(self.selectionFile.get()))
        wanted = set()
        for classId in self._classIds():
            cls = self.inputClasses.get()[classId]
            if cls is not None:
                wanted.update(p.getObjId() for p in cls.iterItems())
        return wanted

    def createOutputStep(self):
        inputSet = self._flexSet()
        wanted = self._wantedIds()
        subset = self._createSetOfParticlesFlex(progName=self._methodName())
        subset.copyInfo(inputSet)
        subset.setHasCTF(inputSet.hasCTF())
        for particle in inputSet.iterItems(orderBy="id"):
            if particle.getObjId() in wanted:
                subset.append(particle.clone())
        write_ids(self._getExtraPath("selection.txt"), [p.getObjId() for p in subset.iterItems()],
                  self.subsetName.get() or None)
        self._defineOutputs(outputParticles=subset)
        self._defineSourceRelation(self.inputParticles, subset)

    # ------------------------------------------------------------------------- info
    def _validate(self):
        errors = []
        if self.inputParticles.get() is None:
            return ["Input particles are missing."]
        if SOURCES[self.source.get()] == "particle selection":
            path = self.selectionFile.get()
            try:
                ids = read_ids(path)
            except (OSError, TypeError, ValueError) as exc:
                return ["Cannot read the particle selection %s (%s)." % (path, exc)]
            if not ids:
                errors.append("The selection %s holds no particle id." % path)
        else:
            if self.inputClasses.get() is None:
                errors.append("Choose the landscape classes.")
            try:
                if not self._classIds():
                    errors.append("Give the ids of the classes to keep.")
            except ValueError:
                errors.append("Class ids: numbers or ranges, e.g. '1 3 5-7'.")
        return errors

    def _summary(self):
        summary = []
        if self.hasAttribute("outputParticles"):
            name = self.subsetName.get()
            summary.append("%s%d of %d particles kept (%s)."
                           % ("%s: " % name if name else "", self.outputParticles.getSize(),
                              self.inputParticles.get().getSize(), SOURCES[self.source.get()]))
        return summary

    def _methods(self):
        return ["A subset of the particles was selected on the conformational landscape with flexplugin."]
