"""cryoSPHERE training (Ducrocq et al. 2024): an atomic model cut into segments moving as rigid bodies."""
import os

import numpy as np
import pyworkflow.protocol.params as params
from pwem.objects.data_flexhub import AtomStructFlex

from flexplugin.constants import Z_FILE, Z_VALUES_FILE
from flexplugin.engine import configs

from .protocol_train_base import ProtFlexTrainBase

SEGMENTS_FILE = "segments.txt"
MOTIONS_FILE = "segment_motions.npz"


class ProtFlexCryoSphere(ProtFlexTrainBase):
    """Learns the motions of an atomic model from the particles (known poses and CTF): the model's
    residues are grouped into segments (learned, contiguous along a chain, never across a chain
    break) that each move as a rigid body; an encoder maps each image to a latent vector z and a
    decoder gives every segment's rotation and translation. Outputs the particles with z, the
    consensus map, models at k-means centres of the latent space, the segmentation (residue ->
    segment) and each segment's motion per particle."""
    _label = "train cryoSPHERE"
    _method = "cryosphere"
    _config = configs.CryoSPHEREConfig
    _requiredInputs = ("atomic_model",)
    _methodOptions = {"numSegments": "--segments", "continuityWeight": "--continuity-weight",
                      "clashWeight": "--clash-weight", "learningRate": "--lr",
                      "segmentsLearningRate": "--lr-segments", "includeLigands": "--ligands"}
    _possibleOutputs = dict(ProtFlexTrainBase._possibleOutputs, outputStructures="SetOfAtomStructFlex")

    def _defineMethodParams(self, form):
        default = self._optionDefault
        form.addParam("numSegments", params.IntParam, default=default("numSegments"), validators=[params.GE(1)],
                      label="Segments",
                      help="Largest number of rigid segments; unused segments end up empty "
                           "(authors' default 20; 10 is usually enough).")
        form.addParam("numStructures", params.IntParam, default=5, validators=[params.GE(1)],
                      label="Models to write",
                      help="Models decoded at this many k-means centres of the latent space.")
        form.addParam("includeLigands", params.BooleanParam, default=default("includeLigands"),
                      label="Include heavy ligands?",
                      help="Yes: every ligand of at least 10 non-hydrogen atoms (cofactors, hemes, "
                           "glycans, drugs) is one pseudo-atom at its centre, weighted by its "
                           "electrons, and moves with the segment of the residues nearest it. No: "
                           "ligands are left out like waters and ions (the log says how many atoms "
                           "and electrons were left out); the model is the polymer's residues "
                           "(amino acids and nucleotides) only.")
        form.addParam("continuityWeight", params.FloatParam, default=default("continuityWeight"),
                      validators=[params.GE(0)], expertLevel=params.LEVEL_ADVANCED,
                      label="Continuity loss weight",
                      help="Weight of the paper's optional continuity loss (Eq. 9), which keeps "
                           "consecutive C-alpha atoms at their distance in the input model, so moving "
                           "segments do not tear the chain apart (0: off; the authors' code uses 0.1).")
        form.addParam("clashWeight", params.FloatParam, default=default("clashWeight"),
                      validators=[params.GE(0)], expertLevel=params.LEVEL_ADVANCED,
                      label="Clash loss weight",
                      help="Weight of the paper's optional clash loss (Eq. 10), which pushes apart "
                           "residues that come closer than %g Å, so moving segments do not overlap "
                           "(0: off; the authors' code uses 0.1)." % self._configDefaults()["clash_cutoff"])
        form.addParam("learningRate", params.FloatParam, default=default("learningRate"),
                      validators=[params.Positive],
                      expertLevel=params.LEVEL_ADVANCED, label="Learning rate",
                      help="Adam learning rate of the encoder and decoder (paper: 3e-5).")
        form.addParam("segmentsLearningRate", params.FloatParam, default=default("segmentsLearningRate"),
                      validators=[params.Positive],
                      expertLevel=params.LEVEL_ADVANCED, label="Segmentation learning rate",
                      help="Learning rate of the segmentation's parameters (paper: 3e-4).")

    # ------------------------------------------------------------------------- steps
    def _resultSteps(self):
        return [self.structuresStep]

    def structuresStep(self, epochs):
        """Models at the k-means centres: the analysis finds the particles nearest the centres,
        decode writes a model (and map) at each."""
        folder = self._outDir("structures")
        self._runEngine("analyze", ["--model", self._outDir(), "--z", self._outDir(Z_FILE),
                                    "--out", folder, "--kmeans", self.numStructures.get(), "--pcs", 0])
        self._runEngine("decode", ["--model", self._outDir(), "--z-file",
                                   os.path.join(folder, "kmeans", Z_VALUES_FILE),
                                   "--out", os.path.join(folder, "models")])

    def _methodOutputs(self, flexSet):
        folder = self._outDir("structures", "models")
        zs = np.loadtxt(self._outDir("structures", "kmeans", Z_VALUES_FILE), ndmin=2)
        models = sorted(n for n in os.listdir(folder) if n.endswith((".pdb", ".cif")))
        structures = self._createSetOfAtomStructFlex(progName=self._method)
        structures.getFlexInfo().copyInfo(flexSet.getFlexInfo())
        for name, z in zip(models, zs):
            model = AtomStructFlex(progName=self._method)
            model.setFileName(os.path.join(folder, name))
            model.getFlexInfo().copyInfo(flexSet.getFlexInfo())
            model.setZFlex(z.tolist())
            structures.append(model)
        return {"outputStructures": structures}

    # ------------------------------------------------------------------------- info
    def segmentation(self):
        """(residue numbers, segments 1..K) the run learned, or None before it ends."""
        path = self._outDir(SEGMENTS_FILE)
        if not os.path.exists(path):
            return None
        table = np.loadtxt(path, dtype=int, ndmin=2)
        return table[:, 0], table[:, 1]

    def _summary(self):
        summary = ProtFlexTrainBase._summary(self)
        seg = self.segmentation()
        if seg is not None:
            numbers, labels = seg
            parts = []
            for k in np.unique(labels):
                res = numbers[labels == k]
                parts.append("segment %d: %d residues (%d-%d)" % (k, len(res), res.min(), res.max()))
            summary.append("Segmentation (%s): %s." % (self._outDir(SEGMENTS_FILE), "; ".join(parts)))
        return summary

    def _citations(self):
        return ["Ducrocq2024"]
