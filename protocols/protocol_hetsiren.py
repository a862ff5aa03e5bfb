"""HetSIREN training (Herreros et al. 2025): real-space decoding with a sinusoidal hypernetwork."""
import pyworkflow.protocol.params as params

from flexplugin.engine import configs

from .protocol_train_base import ProtFlexTrainBase

LOSSES = ["mse", "corr"]
ENCODERS = ["mlp", "conv"]


class ProtFlexHetSiren(ProtFlexTrainBase):
    """Learns a latent landscape in real space with HetSIREN: an encoder maps each image to a
    latent vector z; a network of sine layers whose weights a hypernetwork generates
    decodes z into the change of every voxel inside the mask, added to the reference map (or to a
    consensus map that starts as a reconstruction of the particles with their poses). With a mask the landscape focuses on that region and the maps keep
    the reference outside it. Optionally refines the particles' poses and decouples pose and CTF
    from the latent space."""
    _label = "train HetSIREN"
    _method = "hetsiren"
    _config = configs.HetSIRENConfig
    _optionalInputs = ("mask", "reference")
    _methodOptions = {"refinePoses": "--refine-poses", "decouple": "--decouple", "lossType": "--loss",
                      "encoderType": "--encoder", "learningRate": "--lr", "l1Weight": "--l1",
                      "changeWeight": "--delta-l2", "halfResolutionLoss": "--multires",
                      "referenceEnvelope": "--ref-envelope"}

    def _defineMethodParams(self, form):
        default = self._optionDefault
        form.addParam("refinePoses", params.BooleanParam, default=default("refinePoses"), label="Refine poses?",
                      help="Learn a small correction of each particle's angles and shifts; the output "
                           "particles carry the refined alignment.")
        form.addParam("decouple", params.BooleanParam, default=default("decouple"),
                      label="Decouple pose and CTF?",
                      help="Train with poses and CTFs shuffled within each batch plus consistency "
                           "losses, so the landscape carries conformation rather than pose or defocus.")
        form.addParam("lossType", params.EnumParam, choices=LOSSES, default=LOSSES.index(default("lossType")),
                      expertLevel=params.LEVEL_ADVANCED, label="Image loss",
                      help="Mean squared error (default) or correlation between image and projection.")
        form.addParam("encoderType", params.EnumParam, choices=ENCODERS,
                      default=ENCODERS.index(default("encoderType")),
                      expertLevel=params.LEVEL_ADVANCED, label="Encoder",
                      help="Fully connected (default: three layers of 1024) or the paper's small "
                           "convolutional network, which in our tests needed about twice the epochs "
                           "to order the states.")
        form.addParam("learningRate", params.FloatParam, default=default("learningRate"),
                      validators=[params.Positive], expertLevel=params.LEVEL_ADVANCED, label="Learning rate",
                      help="Adam. The paper's 1e-5 needs many more epochs.")
        form.addParam("l1Weight", params.FloatParam, default=default("l1Weight"), validators=[params.GE(0)],
                      expertLevel=params.LEVEL_ADVANCED, label="Map L1 weight",
                      help="Weight (the paper's lambda_1) of the mean absolute value of the decoded "
                           "maps in the loss: it favours sparse maps, which damps noise outside the "
                           "particle. The paper uses 1, the authors' released program 0.1 (the "
                           "default); 0: off. The other map penalties (negative values, total "
                           "variation, gradients) keep their weights.")
        form.addParam("changeWeight", params.FloatParam, default=default("changeWeight"),
                      validators=[params.GE(0)], expertLevel=params.LEVEL_ADVANCED,
                      label="Change prior weight",
                      help="Weight of the mean square of the decoded change (the part of each map "
                           "that depends on the latent vector) in the loss: a Gaussian prior that "
                           "keeps the change from fitting the images' noise. Higher values give "
                           "cleaner but smaller changes; 0: off. On noisy simulated data (SNR 0.1) "
                           "0.01 (the default) gave class maps 0.6 Å closer to the truth and a "
                           "better ordered landscape than 0.")
        form.addParam("halfResolutionLoss", params.BooleanParam, default=default("halfResolutionLoss"),
                      expertLevel=params.LEVEL_ADVANCED, label="Half-resolution loss term?",
                      help="Also compare each image with its projection after both are cut to half "
                           "the box in Fourier space (the paper's second loss term), which weighs "
                           "the low frequencies more, during the first half of the epochs (coarse "
                           "to fine); the second half compares at full size only. On simulated data "
                           "the term ordered the landscape slightly better at small boxes, above all "
                           "with a focus mask, and dropping it for the second half gave maps about "
                           "0.5 Å closer to the truth at a box of 64 and SNR 0.1 with the same "
                           "landscape. The authors' released program compares at full size only "
                           "(off).")
        form.addParam("referenceEnvelope", params.BooleanParam, default=default("referenceEnvelope"),
                      expertLevel=params.LEVEL_ADVANCED, label="Match the reference to the data?",
                      help="With a reference map: before training, fit per resolution shell the "
                           "factor that makes the reference's projections match the images (a "
                           "reference that is low-pass filtered, sharpened or scaled differently "
                           "from the particles), and apply it to every projection. The maps "
                           "written keep the reference's own filtering, and outside the mask they "
                           "are the reference. Without it a mismatched reference leaves a "
                           "view-dependent residual that the latent space partly learns. Off by "
                           "default: on simulated data it reduced what the latent space learned of "
                           "the view but did not order the states better. No effect without a "
                           "reference.")

    def _citations(self):
        return ["Herreros2025"]
