"""cryoDRGN training (Zhong et al. 2021): a VAE with a Fourier-space coordinate decoder."""
import pyworkflow.protocol.params as params

from .protocol_train_base import ProtFlexTrainBase


class ProtFlexCryoDrgn(ProtFlexTrainBase):
    """Learns a latent landscape of the particles with cryoDRGN (known poses and CTF): an MLP
    encodes each image into a latent vector z; a coordinate network with positional encoding
    decodes z into the 3D Hartley transform of the map. The output particles carry z; the
    consensus map is decoded at the mean z."""
    _label = "train cryoDRGN"
    _method = "cryodrgn"
    _methodOptions = {"encLayers": "--enc-layers", "encDim": "--enc-dim", "decLayers": "--dec-layers",
                      "decDim": "--dec-dim", "posEncoding": "--pe", "learningRate": "--lr"}

    def _defineMethodParams(self, form):
        form.addParam("encLayers", params.IntParam, default=3, validators=[params.GE(1)],
                      label="Encoder hidden layers", help="Hidden layers of the image encoder (paper: 3).")
        form.addParam("encDim", params.IntParam, default=256, validators=[params.GE(8)],
                      label="Encoder width", help="Nodes per encoder layer (paper: 256; 1024 for large sets).")
        form.addParam("decLayers", params.IntParam, default=3, validators=[params.GE(1)],
                      label="Decoder hidden layers", help="Hidden layers of the volume decoder (paper: 3).")
        form.addParam("decDim", params.IntParam, default=256, validators=[params.GE(8)],
                      label="Decoder width", help="Nodes per decoder layer (paper: 256; 1024 for large sets).")
        form.addParam("posEncoding", params.EnumParam, choices=["geom_lowf", "geom_ft", "gaussian"],
                      default=0, expertLevel=params.LEVEL_ADVANCED, label="Positional encoding",
                      help="Frequencies of the coordinate features: geometric low-frequency (default, "
                           "for noisy data), geometric as in the paper's equation, or random Gaussian.")
        form.addParam("learningRate", params.FloatParam, default=1e-4, validators=[params.Positive],
                      expertLevel=params.LEVEL_ADVANCED, label="Learning rate", help="Adam (paper: 1e-4).")

    def _citations(self):
        return ["Zhong2021"]
