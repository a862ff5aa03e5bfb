"""ProtFlexSimulate: a heterogeneous particle set with ground truth (``flexplugin simulate``)."""
import glob
import os

import pyworkflow.protocol.params as params
from pwem.objects import AtomStruct, Volume
from pwem.protocols import EMProtocol

from flexplugin import Plugin
from flexplugin.convert import readParticles

SOURCES = ["built-in object", "volumes", "atomic structure"]
SOURCE_BUILTIN, SOURCE_VOLUMES, SOURCE_STRUCTURE = range(3)


class ProtFlexSimulate(EMProtocol):
    """Simulates cryo-EM particles of a moving object with random poses, shifts, CTF and noise,
    and keeps the ground truth: the state maps, each particle's state and latent coordinate.
    The object is a built-in hinge, a list of volumes (one per state) or an atomic model (each
    MODEL a state, or a hinge motion of a single model)."""
    _label = "simulate particles"
    _possibleOutputs = {"outputParticles": "SetOfParticles", "outputVolumes": "SetOfVolumes",
                        "outputStructure": "AtomStruct"}

    def _defineParams(self, form):
        form.addSection(label="Object")
        form.addParam("source", params.EnumParam, choices=SOURCES, default=SOURCE_BUILTIN,
                      display=params.EnumParam.DISPLAY_HLIST, label="Simulate from",
                      help="The built-in two-domain object, your maps, or an atomic model.")
        form.addParam("inputVolumes", params.MultiPointerParam, pointerClass="Volume", allowsNull=True,
                      condition="source == %d" % SOURCE_VOLUMES, label="State maps",
                      help="One map per discrete state, all with the same box.")
        form.addParam("inputStructure", params.PointerParam, pointerClass="AtomStruct", allowsNull=True,
                      condition="source == %d" % SOURCE_STRUCTURE, label="Atomic model",
                      help="PDB/mmCIF model; one Gaussian per residue.")
        form.addParam("numStates", params.IntParam, default=4, validators=[params.GE(1)],
                      condition="source != %d" % SOURCE_VOLUMES, label="States",
                      help="Number of states along the hinge motion.")
        form.addParam("continuous", params.BooleanParam, default=False,
                      condition="source != %d" % SOURCE_VOLUMES, label="Continuous motion?",
                      help="Sample the hinge angle continuously instead of discrete states.")
        form.addParam("maxAngle", params.FloatParam, default=60.0,
                      condition="source != %d" % SOURCE_VOLUMES, label="Largest hinge angle (deg)")
        form.addSection(label="Images")
        form.addParam("numParticles", params.IntParam, default=1000, validators=[params.GE(1)],
                      label="Particles")
        form.addParam("boxSize", params.IntParam, default=64, validators=[params.GE(8)],
                      label="Box (px)", help="Even image size in pixels.")
        form.addParam("samplingRate", params.FloatParam, default=3.0, validators=[params.GT(0)],
                      label="Pixel size (Å)")
        form.addParam("snr", params.FloatParam, default=0.1, validators=[params.GE(0)],
                      label="Signal-to-noise ratio", help="var(signal)/var(noise); 0: no noise.")
        form.addParam("seed", params.IntParam, default=0, label="Random seed")
        form.addParam("defocusMin", params.FloatParam, default=10000.0, label="Minimum defocus (Å)",
                      expertLevel=params.LEVEL_ADVANCED)
        form.addParam("defocusMax", params.FloatParam, default=25000.0, label="Maximum defocus (Å)",
                      expertLevel=params.LEVEL_ADVANCED)
        form.addParam("voltage", params.FloatParam, default=300.0, label="Voltage (kV)",
                      expertLevel=params.LEVEL_ADVANCED)
        form.addParam("sphericalAberration", params.FloatParam, default=2.7,
                      label="Spherical aberration (mm)", expertLevel=params.LEVEL_ADVANCED)
        form.addParam("amplitudeContrast", params.FloatParam, default=0.1,
                      label="Amplitude contrast", expertLevel=params.LEVEL_ADVANCED)

    # ------------------------------------------------------------------------- steps
    def _insertAllSteps(self):
        self._insertFunctionStep(self.simulateStep)
        self._insertFunctionStep(self.createOutputStep)

    def _simArgs(self):
        args = ["--out", self._getExtraPath(), "--n", self.numParticles.get(),
                "--box", self.boxSize.get(), "--apix", self.samplingRate.get(), "--snr", self.snr.get(),
                "--seed", self.seed.get(), "--defocus-min", self.defocusMin.get(),
                "--defocus-max", self.defocusMax.get(), "--voltage", self.voltage.get(),
                "--cs", self.sphericalAberration.get(), "--amp-contrast", self.amplitudeContrast.get()]
        source = self.source.get()
        if source == SOURCE_VOLUMES:
            return args + ["--volumes"] + [os.path.abspath(p.get().getFileName())
                                           for p in self.inputVolumes]
        args += ["--states", self.numStates.get(), "--max-angle", self.maxAngle.get()]
        if self.continuous:
            args.append("--continuous")
        if source == SOURCE_STRUCTURE:
            args += ["--structure", os.path.abspath(self.inputStructure.get().getFileName())]
        return args

    def simulateStep(self):
        Plugin.runEngine(self, "simulate", self._simArgs())

    def createOutputStep(self):
        parts = readParticles(self._createSetOfParticles(), self._getExtraPath("particles.star"))
        vols = self._createSetOfVolumes()
        vols.setSamplingRate(self.samplingRate.get())
        for fn in sorted(glob.glob(self._getExtraPath("gt_volumes", "state_*.mrc"))):
            vol = Volume(location=fn)
            vol.setSamplingRate(self.samplingRate.get())
            vols.append(vol)
        outputs = dict(outputParticles=parts, outputVolumes=vols)
        if self.source == SOURCE_STRUCTURE:
            # The model as the simulation placed it: in the frame of the particles' maps (voxel 0 at
            # the origin), ready as the atomic-model input of a training protocol.
            # gt_model.cif when a PDB file cannot hold the model's chain ids, names or numbers
            model = self._getExtraPath("gt_model.pdb")
            if not os.path.exists(model):
                model = self._getExtraPath("gt_model.cif")
            outputs["outputStructure"] = AtomStruct(filename=model)
        self._defineOutputs(**outputs)
        if self.source == SOURCE_STRUCTURE:
            self._defineSourceRelation(self.inputStructure, parts)

    # ------------------------------------------------------------------------- info
    def _validate(self):
        errors = []
        if self.boxSize.get() % 2:
            errors.append("The box must be even.")
        if self.defocusMin.get() > self.defocusMax.get():
            errors.append("The minimum defocus is above the maximum.")
        if self.source == SOURCE_VOLUMES and not len(self.inputVolumes):
            errors.append("Give at least one state map.")
        if self.source == SOURCE_STRUCTURE and self.inputStructure.get() is None:
            errors.append("Give an atomic model.")
        return errors

    def _summary(self):
        if not self.hasAttribute("outputParticles"):
            return ["Simulation from the %s not finished yet." % SOURCES[self.source.get()]]
        return ["%d particles (box %d, %.3f Å/px, SNR %g) of %d ground-truth states, simulated from "
                "the %s." % (self.outputParticles.getSize(), self.boxSize.get(),
                             self.samplingRate.get(), self.snr.get(), self.outputVolumes.getSize(),
                             SOURCES[self.source.get()])]

    def _methods(self):
        return ["%d synthetic particles were simulated (flexplugin simulate) with random poses, "
                "shifts, CTF (defocus %g-%g Å) and Gaussian noise at SNR %g."
                % (self.numParticles.get(), self.defocusMin.get(), self.defocusMax.get(), self.snr.get())]

    def _citations(self):
        return ["Zhong2021"]
