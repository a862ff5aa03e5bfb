"""ProtFlexLandscape: the conformational landscape of a trained model (``flexplugin analyze``)."""
import os

import numpy as np
import pyworkflow.protocol.params as params
from pyworkflow.object import Pointer
from pwem.objects.data_flexhub import ParticleFlex

from flexplugin.constants import KMEANS_LABELS_FILE, Z_FILE, Z_VALUES_FILE, ZRED_FILE

from .protocol_model_base import ProtFlexModelBase

REDUCTIONS = ["UMAP", "PCA"]


class ProtFlexLandscape(ProtFlexModelBase):
    """Maps the latent vectors of a trained model (any method) to a 2D or 3D landscape (UMAP or
    PCA), groups the particles by k-means with a map decoded at each cluster's most central
    particle, and decodes maps along the first principal components (5th to 95th percentile).
    The output particles carry the landscape coordinates (zRed) for the landscape viewer, the
    classes can be subset and exported, the traversals played as movies."""
    _label = "landscape analysis"
    _possibleOutputs = {"outputParticles": "SetOfParticlesFlex", "outputClasses": "SetOfClassesFlex",
                        "outputTraversalPC1": "SetOfVolumesFlex"}

    def _defineParams(self, form):
        form.addSection(label="Input")
        self._defineGpuParams(form)
        self._defineFlexParticlesParam(form)
        form.addSection(label="Landscape")
        form.addParam("reduction", params.EnumParam, choices=REDUCTIONS, default=0,
                      label="Landscape coordinates",
                      help="UMAP: a non-linear embedding that separates states well (slower on "
                           "very large sets). PCA: the principal components of z (linear, fast).")
        form.addParam("reducedDim", params.IntParam, default=2, validators=[params.Range(2, 3)],
                      label="Landscape dimension", help="2 or 3 coordinates per particle (zRed).")
        form.addParam("numClusters", params.IntParam, default=10, validators=[params.GE(0)],
                      label="k-means clusters",
                      help="Groups of particles in latent space, each with a map decoded at its most "
                           "central particle's z (0: no clustering).")
        form.addParam("numPCs", params.IntParam, default=2, validators=[params.GE(0)],
                      label="PC traversals", help="Decode maps along this many principal components.")
        form.addParam("traversalPoints", params.IntParam, default=10, validators=[params.GE(2)],
                      label="Maps per traversal",
                      help="Maps evenly spaced from the 5th to the 95th percentile of each PC.")
        form.addParam("pathParticles", params.StringParam, default="", expertLevel=params.LEVEL_ADVANCED,
                      label="Path between particles",
                      help="Two particle ids, e.g. '12 3401': maps along the shortest path between "
                           "them in a nearest-neighbour graph of the latent space (empty: none).")
        form.addParam("seed", params.IntParam, default=0, expertLevel=params.LEVEL_ADVANCED,
                      label="Random seed", help="Seed of k-means and UMAP.")
        self._defineDecodeBoxParam(form)

    # ------------------------------------------------------------------------- steps
    def _insertAllSteps(self):
        self._insertFunctionStep(self.writeZStep, needsGPU=False)
        self._insertFunctionStep(self.analyzeStep, needsGPU=True)
        self._insertFunctionStep(self.createOutputStep, needsGPU=False)

    def _outDir(self, *paths):
        return self._getExtraPath("landscape", *paths)

    def _pathRows(self):
        """Rows (in id order) of the two particles of ``pathParticles``, or None."""
        values = self.pathParticles.get("").replace(",", " ").split()
        if not values:
            return None
        ids = list(np.load(self._getExtraPath("ids.npy")))
        return [ids.index(int(v)) for v in values]

    def analyzeStep(self):
        args = ["--model", self._modelDir(), "--z", self._getExtraPath(Z_FILE), "--out", self._outDir(),
                "--ndim", self.reducedDim.get(), "--kmeans", self.numClusters.get(),
                "--pcs", self.numPCs.get(), "--traversal-points", self.traversalPoints.get(),
                "--seed", self.seed.get()] + self._decodeArgs()
        if REDUCTIONS[self.reduction.get()] == "UMAP":
            args.append("--umap")
        rows = self._pathRows()
        if rows:
            args += ["--path", "%d,%d" % tuple(rows)]
        self._runEngine("analyze", args)

    def _maps(self, folder):
        names = sorted(n for n in os.listdir(self._outDir(folder)) if n.endswith(".mrc"))
        return [self._outDir(folder, n) for n in names]

    def createOutputStep(self):
        inputSet = self._flexSet()
        ids, z = np.load(self._getExtraPath("ids.npy")), np.load(self._getExtraPath(Z_FILE))
        zred = np.load(self._outDir(ZRED_FILE))
        method = self._methodName()
        particles = self._createSetOfParticlesFlex(progName=method)
        particles.copyInfo(inputSet)
        particles.setHasCTF(inputSet.hasCTF())
        rowOf = {int(i): r for r, i in enumerate(ids)}
        for particle in inputSet.iterItems(orderBy="id"):
            fp = ParticleFlex(progName=method)
            fp.copyInfo(particle)
            fp.setObjId(particle.getObjId())
            fp.setZRed(zred[rowOf[particle.getObjId()]].tolist())
            particles.append(fp)
        # The particles first: the classes point at them through this protocol's output (a direct
        # pointer to the set would put a developer warning in the user's log).
        self._defineOutputs(outputParticles=particles)
        self._defineSourceRelation(self.inputParticles, particles)
        outputs = {}
        if self.numClusters.get():
            outputs["outputClasses"] = self._classes(Pointer(self, extended="outputParticles"), ids, z, zred)
        for k in range(1, self.numPCs.get() + 1):
            folder = "pc%d" % k
            if os.path.isdir(self._outDir(folder)):
                zs = np.loadtxt(self._outDir(folder, Z_VALUES_FILE), ndmin=2)
                outputs["outputTraversalPC%d" % k] = self._volumeSet("_pc%d" % k, self._maps(folder), zs)
        if os.path.isdir(self._outDir("path")):
            zs = np.loadtxt(self._outDir("path", Z_VALUES_FILE), ndmin=2)
            outputs["outputTraversalPath"] = self._volumeSet("_path", self._maps("path"), zs)
        if outputs:
            self._defineOutputs(**outputs)
        for output in outputs.values():
            self._defineSourceRelation(self.inputParticles, output)

    def _classes(self, particles, ids, z, zred):
        labels = np.load(self._outDir(KMEANS_LABELS_FILE))
        nearest = np.loadtxt(self._outDir("kmeans_nearest.txt"), dtype=int, ndmin=1)
        maps = self._maps("kmeans")
        labelOf = {int(i): int(lab) for i, lab in zip(ids, labels)}
        classes = self._createSetOfClassesFlex(particles, progName=self._methodName())

        def updateItem(item, row):
            item.setClassId(labelOf[item.getObjId()] + 1)

        def updateClass(cls):
            k = cls.getObjId() - 1
            cls.setRepresentative(self._flexVolume(maps[k], z[nearest[k]], zred[nearest[k]]))

        classes.classifyItems(updateItemCallback=updateItem, updateClassCallback=updateClass,
                              itemDataIterator=iter(range(len(ids))), iterParams={"orderBy": "id"})
        return classes

    # ------------------------------------------------------------------------- info
    def _validate(self):
        errors = ProtFlexModelBase._validate(self)
        parts = self.inputParticles.get()
        if parts is not None and self.numClusters.get() > parts.getSize():
            errors.append("More clusters (%d) than particles (%d)." % (self.numClusters.get(), parts.getSize()))
        values = self.pathParticles.get("").replace(",", " ").split()
        if values and (len(values) != 2 or not all(v.isdigit() for v in values)):
            errors.append("Path between particles: give two particle ids, e.g. '12 3401'.")
        return errors

    def _summary(self):
        summary = [self._modelSummary()]
        if self.hasAttribute("outputParticles"):
            summary.append("Landscape: %s, %d coordinates per particle (zRed)."
                           % (REDUCTIONS[self.reduction.get()], self.reducedDim.get()))
        if self.hasAttribute("outputClasses"):
            sizes = sorted((c.getSize() for c in self.outputClasses), reverse=True)
            summary.append("k-means: %d classes of %s particles." % (len(sizes), ", ".join(map(str, sizes))))
        variance = self._outDir("pca_variance.txt")
        if os.path.exists(variance):
            ratios = np.loadtxt(variance, ndmin=1)[:4]
            summary.append("Explained variance of the first PCs: %s."
                           % ", ".join("%.0f%%" % (100 * r) for r in ratios))
        return summary

    def _methods(self):
        return ["The latent space of the %s model was analysed with flexplugin (%s landscape, "
                "k-means with %d clusters, maps along %d principal components)."
                % (self._methodName(), REDUCTIONS[self.reduction.get()], self.numClusters.get(),
                   self.numPCs.get())]

    def _citations(self):
        return ["McInnes2018"] if REDUCTIONS[self.reduction.get()] == "UMAP" else []
