"""cryoDRGN training (Zhong et al. 2021): a VAE with a Fourier-space coordinate decoder."""
import pyworkflow.protocol.params as params

from flexplugin.engine import configs

from .protocol_train_base import EmptyOrGE, ProtFlexTrainBase

POS_ENCODINGS = ["geom_lowf", "geom_ft", "gaussian"]


class ProtFlexCryoDrgn(ProtFlexTrainBase):
    """Learns a latent landscape of the particles with cryoDRGN (known poses and CTF): an MLP
    encodes each image into a latent vector z; a coordinate network with positional encoding
    decodes z into the 3D Hartley transform of the map. The output particles carry z; the
    consensus map is decoded at the mean z."""
    _label = "train cryoDRGN"
    _method = "cryodrgn"
    _config = configs.CryoDRGNConfig
    _methodOptions = {"encLayers": "--enc-layers", "encDim": "--enc-dim", "decLayers": "--dec-layers",
                      "decDim": "--dec-dim", "posEncoding": "--pe", "learningRate": "--lr",
                      "klWeight": "--beta"}

    def _defineMethodParams(self, form):
        default = self._optionDefault
        form.addParam("encLayers", params.IntParam, default=default("encLayers"), validators=[params.GE(1)],
                      label="Encoder hidden layers", help="Hidden layers of the image encoder (paper: 3).")
        form.addParam("encDim", params.IntParam, default=default("encDim"), validators=[params.GE(8)],
                      label="Encoder width", help="Nodes per encoder layer (paper: 256; 1024 for large sets).")
        form.addParam("decLayers", params.IntParam, default=default("decLayers"), validators=[params.GE(1)],
                      label="Decoder hidden layers", help="Hidden layers of the volume decoder (paper: 3).")
        form.addParam("decDim", params.IntParam, default=default("decDim"), validators=[params.GE(8)],
                      label="Decoder width", help="Nodes per decoder layer (paper: 256; 1024 for large sets).")
        form.addParam("posEncoding", params.EnumParam, choices=POS_ENCODINGS,
                      default=POS_ENCODINGS.index(default("posEncoding")),
                      expertLevel=params.LEVEL_ADVANCED, label="Positional encoding",
                      help="Frequencies of the coordinate features: geometric low-frequency (default, "
                           "for noisy data), geometric as in the paper's equation, or random Gaussian.")
        form.addParam("learningRate", params.FloatParam, default=default("learningRate"),
                      validators=[params.Positive],
                      expertLevel=params.LEVEL_ADVANCED, label="Learning rate", help="Adam (paper: 1e-4).")
        form.addParam("klWeight", params.FloatParam, default=default("klWeight"), allowsNull=True,
                      validators=[EmptyOrGE(0)], expertLevel=params.LEVEL_ADVANCED,
                      label="KL weight (beta)",
                      help="Weight of the KL divergence of each particle's posterior q(z|image) from the "
                           "N(0, I) prior in the loss (image error + beta KL / pixels). Larger values "
                           "keep z close to the prior (a smoother, more compact landscape that may "
                           "merge similar states); smaller ones let z spread to fit the images. "
                           "Empty: 1 / latent dimension.")

    def _citations(self):
        return ["Zhong2021"]
