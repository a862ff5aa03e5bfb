"""HetACUMN training (Chen et al. 2023): amortized inference of pose and conformation."""
import pyworkflow.protocol.params as params

from flexplugin.engine import configs

from .protocol_train_base import ProtFlexTrainBase


class ProtFlexHetAcumn(ProtFlexTrainBase):
    """Learns each particle's pose (rotation and shift) and latent vector z together, without
    input angles (ab initio): a ResNet encoder with pose and conformation heads and a Fourier-space
    decoder. An auxiliary task (projections of the decoded map at random poses, re-encoded) teaches
    the encoder to separate pose from conformation. The output particles carry z and the estimated
    alignment; given angles can instead be the starting point."""
    _label = "train HetACUMN"
    _method = "hetacumn"
    _requiresAlignment = False
    _config = configs.HetACUMNConfig
    _defaultEpochs = 100    # the paper's schedule: 50 epochs with the conformation head frozen, then 50
    _methodOptions = {"useInputPoses": "--no-ignore-poses", "frozenEpochs": "--fch-epochs",
                      "auxiliaryTask": "--cpp", "learningRate": "--lr", "encoderWidth": "--enc-dim",
                      "klWeight": "--lambda-z", "decoderLrScale": "--dec-lr-scale"}

    def _defineMethodParams(self, form):
        default = self._optionDefault
        form.addParam("useInputPoses", params.BooleanParam, default=default("useInputPoses"),
                      label="Start from the input poses?",
                      help="No (default): ab initio, the input alignment is ignored. Yes: the encoder "
                           "starts from the particles' angles and shifts and refines them; on a CPU "
                           "this is the mode that recovers conformations within hours (ab initio "
                           "pose learning needs far more images).")
        form.addParam("frozenEpochs", params.IntParam, default=default("frozenEpochs"), validators=[params.GE(0)],
                      label="Epochs before conformation",
                      help="Epochs during which the conformation head is frozen (z from the prior) "
                           "so the poses settle first (paper: 50).")
        form.addParam("auxiliaryTask", params.BooleanParam, default=default("auxiliaryTask"),
                      expertLevel=params.LEVEL_ADVANCED,
                      label="Auxiliary pose task?",
                      help="The conditional pose prediction task that disentangles pose from conformation.")
        form.addParam("learningRate", params.FloatParam, default=default("learningRate"),
                      validators=[params.Positive],
                      expertLevel=params.LEVEL_ADVANCED, label="Learning rate", help="Adam (paper: 1.5e-4).")
        form.addParam("encoderWidth", params.IntParam, default=default("encoderWidth"), validators=[params.GE(4)],
                      expertLevel=params.LEVEL_ADVANCED, label="Encoder width",
                      help="Channels of the ResNet-18 encoder's first stage (paper: 64; the later stages "
                           "have 2, 4 and 8 times as many). 16 trains several times faster on a CPU.")
        form.addParam("klWeight", params.FloatParam, default=default("klWeight"), validators=[params.GE(0)],
                      expertLevel=params.LEVEL_ADVANCED, label="KL weight (lambda_z)",
                      help="Weight of the KL divergence of each particle's conformation posterior "
                           "q(z|image) from the N(0, I) prior in the loss (paper's Eq. 7: 1e-4). Larger "
                           "values keep z close to the prior (a smoother, more compact landscape that "
                           "may merge similar states); smaller ones let z spread to fit the images. "
                           "It applies once the conformation head is trained (after 'Epochs before "
                           "conformation').")
        form.addParam("decoderLrScale", params.FloatParam, default=default("decoderLrScale"),
                      validators=[params.Positive], expertLevel=params.LEVEL_ADVANCED,
                      label="Decoder learning rate factor",
                      help="The decoder's learning rate as a multiple of the learning rate above (1: "
                           "one rate, as the paper). With input poses on small sets the encoder learns "
                           "best at a low rate and the decoder at a higher one: 3.33 (encoder 3e-4, "
                           "decoder 1e-3) ordered the states slightly better in our tests.")

    def _validate(self):
        errors = ProtFlexTrainBase._validate(self)
        parts = self.inputParticles.get()
        if parts is not None and self.useInputPoses and not parts.hasAlignmentProj():
            errors.append("'Start from the input poses' needs particles with 3D alignment.")
        if self.frozenEpochs.get() >= self.numEpochs.get():
            errors.append("The conformation head would stay frozen for the whole run: use more epochs "
                          "than 'Epochs before conformation' (%d)." % self.frozenEpochs.get())
        return errors

    def _citations(self):
        return ["Chen2023"]
