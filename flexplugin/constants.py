"""Names shared by the Scipion side of flexplugin (plugin variables, versions, file names)."""
from . import __version__

VERSION = __version__
ENGINE_ENV_NAME = "flexplugin-%s" % VERSION      # conda env / venv folder of the engine
ENGINE_MODULE = "flexplugin.engine.cli"          # run as ``python -m ENGINE_MODULE <command> ...``
PIP_DISTRIBUTION = "scipion-em-flexplugin"
TORCH_VERSION = "2.13.0"                         # pinned torch of the engine environment
ENGINE_PYTHON = "3.11"                           # python of a conda engine environment

# Plugin variables (scipion.conf [PLUGINS] or the environment)
FLEXPLUGIN_ENV_ACTIVATION = "FLEXPLUGIN_ENV_ACTIVATION"   # "" = this interpreter
FLEXPLUGIN_TORCH_INDEX = "FLEXPLUGIN_TORCH_INDEX"         # pip index of torch wheels; "" = pip's own

TORCH_WHEELS_URL = "https://download.pytorch.org/whl/%s"  # %s = cpu, cu121, cu126, ...

# Files the engine writes into a protocol's extra/ folder
PARTICLES_STAR = "particles.star"
Z_FILE = "z.npy"
ROTATIONS_FILE = "rotations.npy"  # optional (methods estimating poses): (N,3,3) RELION matrices
SHIFTS_FILE = "shifts_A.npy"      # optional: (N,2) shifts in Å, rlnOriginX/YAngst
CONSENSUS_MAP = "consensus.mrc"
CONFIG_JSON = "config.json"       # the training run: method, configuration, data, device
# Files of a landscape analysis (``flexplugin analyze``)
ZRED_FILE = "zred.npy"            # (N, 2 or 3) reduced landscape coordinates
KMEANS_LABELS_FILE = "kmeans_labels.npy"   # (N,) cluster of each particle, 0-based
Z_VALUES_FILE = "z_values.txt"    # latent points of a folder of decoded maps, one row per map
PCA_FILE = "pca.npy"              # (N, n) principal-component coordinates of z
ANALYSIS_JSON = "analysis.json"   # parameters, reduction ("zred"), "pca_variance", "pc_traversals", "path"
LANDSCAPE_PLOT = "landscape.png"  # particle density and k-means classes on the landscape
PCA_VARIANCE_PLOT = "pca_variance.png"     # explained variance of the principal components
CLUSTER_SIZES_PLOT = "cluster_sizes.png"   # particles in each k-means class (with k-means)
