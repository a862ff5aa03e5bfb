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

# References cited by the protocols (pyworkflow reads ``_bibtex`` of the plugin package).
BIBTEX = {
    "Scheres2012": dict(ID="Scheres2012", ENTRYTYPE="article", author="Scheres, S. H. W.",
                        title="RELION: implementation of a Bayesian approach to cryo-EM structure "
                              "determination", journal="J. Struct. Biol.", volume="180",
                        pages="519--530", year="2012", doi="10.1016/j.jsb.2012.09.006"),
    "Punjani2017": dict(ID="Punjani2017", ENTRYTYPE="article",
                        author="Punjani, A. and Rubinstein, J. L. and Fleet, D. J. and Brubaker, M. A.",
                        title="cryoSPARC: algorithms for rapid unsupervised cryo-EM structure "
                              "determination", journal="Nat. Methods", volume="14",
                        pages="290--296", year="2017", doi="10.1038/nmeth.4169"),
    "Zhong2021": dict(ID="Zhong2021", ENTRYTYPE="article",
                      author="Zhong, E. D. and Bepler, T. and Berger, B. and Davis, J. H.",
                      title="CryoDRGN: reconstruction of heterogeneous cryo-EM structures using "
                            "neural networks", journal="Nat. Methods", volume="18",
                      pages="176--185", year="2021", doi="10.1038/s41592-020-01049-4"),
}
