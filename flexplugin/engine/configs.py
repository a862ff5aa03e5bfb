"""The hyper-parameters of every method: :class:`BaseConfig` and one Config dataclass per method
(``Method.Config``; see :mod:`flexplugin.engine.methods.base`). This module imports neither torch
nor Scipion, so the Scipion forms read the defaults from it (``dataclasses.fields``) and the
method modules import their Config from it.

Each field's comment gives its source, with the tags of the method's module docstring
(``methods/cryodrgn.py``, ``hetacumn.py``, ``cryosphere.py``, ``hetsiren.py``).
"""
import dataclasses
from dataclasses import dataclass
from typing import Optional

@dataclass
class BaseConfig:
    """Hyper-parameters shared by every method (the optimizer is built by the training loop)."""
    zdim: int = 8                 # latent dimension (0: homogeneous, where the method allows it)
    lr: float = 1e-4              # Adam learning rate
    batch_size: int = 8           # images per optimisation step
    weight_decay: float = 0.0     # Adam weight decay
    # Arithmetic of the training step (not a model hyper-parameter; weights stay float32):
    # "auto" = float16 autocast + gradient scaling on CUDA, bfloat16 autocast on CPUs with
    # bfloat16 matrix instructions, AMX or AVX-512 BF16 (measured 1.5-2x faster per image there,
    # accuracy unchanged: benchmarks/RESULTS.md) for methods whose ``cpu_bfloat16`` is True,
    # float32 on other CPUs; "bf16" forces bfloat16 autocast; "fp32" none.
    precision: str = "auto"

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError("%s: unknown hyper-parameters %s" % (cls.__qualname__, sorted(unknown)))
        return cls(**d)


# cryoDRGN (methods/cryodrgn.py: [CD l.N] lines of the paper, spec part A of cryodrgn_hetacumn.md).
@dataclass
class CryoDRGNConfig(BaseConfig):
    zdim: int = 8               # latent dimension: 1 (simulated sets) or 10 (real data) [CD l.106, 269-277]
    lr: float = 1e-4            # Adam learning rate [CD l.414-415, 431-432]
    batch_size: int = 8         # minibatch [CD l.414-415, 431-432]
    enc_layers: int = 3         # encoder hidden layers: 256x3 (simulated, pilots) [CD l.410-412, 440]
    enc_dim: int = 256          # encoder width [CD l.410-412]
    dec_layers: int = 3         # decoder hidden layers: 256x3 (pilots); 512x5 for the simulations [CD]
    dec_dim: int = 256          # decoder width [CD l.410-412, 440]
    pe: str = "geom_lowf"       # geom_lowf | geom_ft | gaussian; geom_lowf for noisy data [CD l.317-320; spec A2.1]
    pe_sigma: float = 0.5       # gaussian features: std in units of D/2 radians [EXT, spec A2.1]
    beta: Optional[float] = None  # KL weight; None = 1/zdim [EXT, spec A3]


# HetACUMN (methods/hetacumn.py: [HA §x] sections of the paper, spec part B of cryodrgn_hetacumn.md).
@dataclass
class HetACUMNConfig(BaseConfig):
    zdim: int = 8                 # latent dimension d = 8 [HA §5.1]
    lr: float = 1.5e-4            # Adam learning rate [HA §5.1]
    batch_size: int = 128         # 128 and 512 for the two simulated sets [HA §5.1]; 128 (80S) fits a CPU
    enc_dim: int = 64             # channels of the first ResNet-18 stage (64/128/256/512) [HA App. A1]
    enc_stem: str = "auto"        # imagenet | small | auto: the ResNet stem; auto: small below D=128 (ours)
    enc_pool: bool = False        # flatten the last map ("flattened" [HA App. A1]): it keeps
                                  # where the particle is, which the shift head needs (True: spec B9's pool)
    head_dim: int = 256           # hidden width of the three heads [HA App. A1]
    dec_dim: int = 256            # decoder width [HA App. A2]
    dec_layers: int = 3           # decoder hidden residual layers [UNSPEC; cryoFIRE default, spec B2]
    pe_sigma: float = 0.5         # random Fourier features: std in units of D/2 cycles [EXT, spec B2]
    lambda_z: float = 1e-4        # KL weight [HA Eq. 7, §5.1]
    lambda_t: float = 1e-3        # weight of the shift L1 (times 1/2) [HA Eq. 7, §5.1]
    lambda_p: float = 0.1         # CPP pose loss weight [HA Eq. 8, §5.1]
    fch_epochs: int = 50          # conformation head frozen (z from the prior) for these epochs [HA §5.1]
    cpp: bool = True              # the auxiliary task; False is the paper's "-CPP" ablation [HA §6]
    cpp_max_shift: Optional[float] = None  # CPP shifts U[-m, m]^2, m in box fractions; None: from the
                                  # data's shifts (see ``initialise``), else 0.0625 (8 px at D=128 [HA App. B])
    snr: Optional[float] = None   # ASN signal-to-noise ratio; None: estimated from the data [HA Eq. 9]
    ignore_poses: bool = True     # ab initio; False: refine the batch's poses, starting from them (ours)
    pose_weight: float = 0.1      # weight of that pull toward given poses: lambda_p's (our choice)
    given_pose_epochs: int = 0    # epochs rendering at the given poses if not ignore_poses (our choice)
    pose_uniformity: float = 0.0  # weight of a uniform-orientation prior on predicted rotations (ours,
                                  # ``_uniformity``). Ab initio without it the predicted views collapse
                                  # toward one axis (in-plane angles learned: median ||dR||^2 4.77 after
                                  # 36k images, D=32, SNR 1); at weight 1 they stay uniform but random
                                  # (6.87): off by default

    @classmethod
    def from_dict(cls, d):
        # Models saved before the stem was an option have the ImageNet stem.
        return super().from_dict(dict({"enc_stem": "imagenet"}, **d))


# cryoSPHERE (methods/cryosphere.py: [P] paper, [C] the authors' code, [S] our choice; spec part A
# of cryosphere_hetsiren.md).
@dataclass
class CryoSPHEREConfig(BaseConfig):
    zdim: int = 8               # latent dimension [C latent_dimension 8; the paper's value is lost]
    lr: float = 3e-5            # Adam lr of encoder and decoder [P B.3, EMPIAR-10180]
    batch_size: int = 128       # [C batch_size; the paper's value is lost]
    lr_segments: float = 3e-4   # Adam lr of the segmentation's variational parameters [P B.3]
    segments: int = 20          # K, the maximum number of segments [C N_segm 20; P B.2.6: 10 "still good"]
    tau: float = 0.05           # temperature of the segmentation softmax [C tau_segmentation]
    sigma: float = 2.0          # width (std, Å) of each residue's Gaussian [C sigma_gmm]; at least one
                                # training pixel (our choice: narrower Gaussians alias on the grid)
    enc_dim: int = 256          # encoder width: residual MLP of constant width (our choice; the paper's
                                # EMPIAR-10180 encoder tapers 512, 256, 64, 64 [P B.3])
    enc_layers: int = 3         # encoder hidden blocks after the first layer: 4 hidden layers [P B.3]
    dec_dim: int = 512          # decoder width [P B.3: 512, 512]
    dec_layers: int = 1         # decoder hidden blocks after the first layer: 2 hidden layers [P B.3]
    kl_warmup: int = 150        # epochs of the linear warm-up of the KL of z, mu, sigma [C: N_epochs // 2
                                # with its 300 epochs]; 0: full weight at once
    kl_cycle: int = 60          # epochs per cycle of the proportions' KL weight (rises over the first half)
                                # [C: 5 cycles over 300 epochs, R = 0.5]; 0: full weight at once
    l2: float = 1e-6            # L2 penalty on encoder and decoder weights [C]
    continuity_weight: float = 0.0   # consecutive C-alpha distances kept [P eq. 9, optional; C 0.1]
    clash_weight: float = 0.0   # residues closer than clash_cutoff pushed apart [P eq. 10, optional; C 0.1]
    clash_cutoff: float = 4.0   # Å [C clashing_cutoff]
    clash_pairs_max: Optional[float] = None  # only pairs closer than this (Å) in the input model
                                # ([C] light version for large models: 10); None: all pairs [P]
    z_samples: int = 64         # encode: z is the posterior mean by importance sampling (this many
                                # samples from the encoder's q(z|y), widened by z_widen, weighted by
                                # a Gaussian likelihood of the image, noise from the residual at
                                # q's mean, and the N(0, I) prior); 0: q's mean (our choice, see
                                # ``_posterior_mean``). Costs z_samples + 1 renderings per particle
                                # in encode (about a third of an epoch's training per sample).
                                # Measured (benchmarks/RESULTS.md, 10k particles, SNR 0.1):
                                # |Spearman| 0.873 (q's mean) -> 0.899 (32, x2) -> 0.910 (64, x4)
                                # -> 0.906 (64, x8)
    z_widen: float = 4.0        # proposal std = z_widen x the encoder's std


# HetSIREN (methods/hetsiren.py: [P] paper, [C] the authors' implementation, [S] the spec's
# suggestion; spec part B of cryosphere_hetsiren.md).
#
# How the latent learns the conformation. Measured on the tests' 1D motion (built-in hinge, D=32,
# 1500 particles, 5 states, SNR 1, CTF, shifts; zdim 4, batch 16, 8 epochs, one thread; |Spearman|
# of z's PC1 with the state, kNN accuracy of the state from z, chance 0.2), decomposed as a ladder
# (tests/engine/test_hetsiren_ladder.py, benchmarks/RESULTS.md):
# - decoder fitted with the true state as z (zdim 1): with omega0 30 the per-image loss as a
#   function of z has 6.9 local minima over the states' range (the map changes by 25-90% between
#   z steps of 0.1); with omega0 1 it has 1.06 (86% of the images one minimum), and choosing each
#   image's z by grid search against that decoder recovers the states (|Spearman| 0.98);
# - encoder alone against that frozen decoder: omega0 30 -> |Spearman| 0.37 (z shrinks to the
#   middle state), omega0 1 -> 0.64 at lr 2e-3, 0.75 at 3e-4; the MLP encoder 0.94 in 8 epochs,
#   the conv encoder 0.93 only in 16; trained to regress the state directly, neither encoder
#   predicts it on held-out images (|Spearman| <= 0.29): z is learned per particle through the
#   decoder, which the MLP does faster;
# - together, consensus learned from zero: 0.47-0.55 (z fits what the forming consensus misses);
#   consensus started from the reconstruction: 0.926-0.944 over three seeds (float32 0.927,
#   bfloat16 0.933), against 0.28 with the conv encoder and 0.002 with omega0 30; our cryoDRGN on
#   the same data and epochs (zdim 4): 0.851. Not helpful: z standardised over the batch (0.03),
#   with added noise (0.003), the encoder reading centred and phase-flipped images (no change).
@dataclass
class HetSIRENConfig(BaseConfig):
    zdim: int = 10                 # latent dimension, default 10 [P "Encoder"; spec B.4, B.11]
    lr: float = 1e-4               # Adam learning rate; the paper's 1e-5 [P; spec B.11] needs many
    #                                more epochs (our choice: 1e-4 gave |Spearman| 0.932 above at batch 8)
    batch_size: int = 8            # [P "HetSIREN cost function"; spec B.11]
    encoder: str = "mlp"           # mlp | conv (the paper's default, "more robust") [P "Encoder"]; see below
    enc_box: int = 64              # conv encoder: images resized to 64 x 64 [C, spec B.4]
    enc_dim: int = 256             # dense width after the conv trunk and in the heads [C, spec B.4]
    enc_layers: int = 4            # dense layers after the conv trunk [C, spec B.4]
    head_layers: int = 3           # dense layers of each head (z, angles, shifts) [C, spec B.4]
    mlp_dim: int = 1024            # MLP encoder: "three hidden layers of 1024 neurons" [P]
    mlp_layers: int = 3            # [P "Encoder"]
    dec_dim: Optional[int] = None  # meta-sine and hypernetwork width; None: max(zdim, 8) ([P "Decoder"]: zdim;
    #                                at zdim 1 a width of 1 fits the oracle's states worse: data loss
    #                                0.427 against 0.391 at 8, encoder alone |Spearman| 0.93 vs 0.96)
    dec_layers: int = 3            # residual meta-sine layers after the first [P "three"; C, spec B.5]
    vox_init: float = 1.0          # scale of the final voxel layer's initial weights (1: [C, spec B.5])
    hyper_layers: int = 1          # ReLU layers of each hypernetwork [C, spec B.5]
    omega0: float = 1.0            # first meta-sine layer's frequency ([C]: 30); 1 after [C, spec B.5]
    loss: str = "mse"              # mse (default) | corr (correlation) [P Eq. 5; spec B.8]
    multires: bool = True          # add the half-resolution (2R) comparison [P Eq. 10; spec B.9]
    l1: float = 0.1                # lambda_1, L1 of the map: paper 1.0, shipped tool 0.1 [spec B.8, B.15]
    neg: float = 0.1               # lambda_2, negative values: paper 1.0, tool ties it to lambda_1 [spec B.15]
    tv: float = 0.1                # lambda_3, total variation [P Eq. 9]
    l2grad: float = 0.1            # lambda_4, squared gradient [P Eq. 9]
    focus: float = 10.0            # lambda_5, distribution matching inside the mask ([C]: 100, no value in
    #                                [P]); on the tests' motion with a mask and a reference (8 epochs)
    #                                |Spearman| 0.571 at 100 (z barely moves the map), 0.933 at 10,
    #                                0.937 at 1, 0.941 at 0
    refine_poses: bool = False     # learn pose corrections [P "pose refinement"]; off unless asked (our choice)
    decouple: bool = False         # pose and CTF decoupling [P Eq. 3-4]; off unless asked (our choice)
    lambda_pose: float = 1e-3      # lambda_p [C-SC, spec B.7]
    lambda_ctf: float = 1e-3       # lambda_c [C-SC, spec B.7]
    max_delta_deg: float = 10.0    # bound on the rotation correction, tanh-limited (our choice: local refinement)
    max_delta_px: float = 3.0      # bound on the shift correction in pixels (our choice)
    # Pose refinement (with refine_poses). Measured at D=32 (1500 particles, SNR 1, rotations
    # perturbed by exactly 5 degrees, zdim 0, lr 2e-3, batch 16, 6 epochs; median angular error):
    # - the heads alone, trained from the first epoch: 5.0 -> 10.0 (the corrections ran to their
    #   bound while the map was still forming);
    # - a local Gauss-Newton fit of each particle's pose to the decoded map in encode, with a
    #   Gaussian prior around the input pose (a MAP estimate: at SNR 1 the likelihood alone is too
    #   flat, a fit without the prior started at the true poses drifted to 3.5-3.9): 5.0 -> 3.41
    #   (with the ground-truth map instead of the learned one: 2.7);
    # - the same after the heads (2 warm-up epochs, pose_reg 1e-3): 3.58, and slower;
    # - one Gauss-Newton step per training step after the warm-up (the map then learns from the
    #   refined poses): 5.1, the map and the poses drift together; so 0 by default.
    pose_heads: bool = False       # the encoder's pose heads [P Supp. Fig. 4]; off: see above
    pose_warmup: int = 2           # epochs with every correction held at zero while the map forms (our choice)
    pose_reg: float = 1e-3         # L2 of the heads' corrections (deg^2 + px^2) toward zero [S, spec B.15]
    pose_search: int = 3           # Gauss-Newton steps of the local refinement in encode (our choice; 0: off;
    #                                5 steps or a prior of 2 or 4 degrees gave 3.5-3.7 on 300 particles)
    pose_search_train: int = 0     # steps per training step after the warm-up, continuing from the
    #                                particle's correction of its previous epoch (each step costs
    #                                two projections)
    pose_lowpass: float = 0.0      # Gaussian low-pass (sigma, cycles/px) of the local refinement's
    #                                comparison; 0: none (0.1 and 0.15 lost accuracy: 4.1, 3.4 with the
    #                                ground-truth map against 2.7 without)
    pose_sigma_deg: float = 3.0    # prior of the local refinement: expected error of the input
    pose_sigma_px: float = 1.0     #   rotations (deg per axis) and shifts (px per axis) (our choice)
    blur_sigma: float = 0.0        # Gaussian blur of projections, px; [C] 1 px after a nearest-pixel
    #                                splat; after our bilinear splat 0 is closest to exact projections
    #                                (relative error 0.4% at 0, 1.5% at 0.5, 6.8% at 1 px; measured)
    ctf_pad: int = 2               # zero padding before applying the CTF [C, spec B.2]
    init_consensus: bool = True    # start the learned consensus from a direct Fourier reconstruction
    #                                with the given poses (our choice; see the measurements above)
    init_particles: int = 10000    # at most this many (random) particles in that reconstruction
    delta_l2: float = 0.01         # weight of the mean squared decoded change dV (in units of its
    #                                projections: voxel value x box), a Gaussian prior on the change
    #                                (our choice). Without it the change fits the images' noise: at
    #                                D=64, SNR 0.1 it was 2.8x the true change's size and correlated
    #                                0.3-0.4 with it, the state maps 1.8 Å worse than the mixture's.
    #                                D=32, 5 states, 8 epochs (|Spearman| / mean FSC=0.5 / corr. of the
    #                                change with the truth): SNR 0.1 two sets 0.612, 0.669 / 9.30,
    #                                9.15 Å / 0.2-0.37 at 0; 0.698, 0.779 / 8.69, 8.64 Å / 0.56-0.60
    #                                at 0.01; SNR 1: 0.927 / 7.61 Å / 0.74 at 0, 0.941 / 7.31 Å /
    #                                0.86 at 0.01 (the change ~75% of the truth's size; 0.03: 50%)
