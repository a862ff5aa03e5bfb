"""The hyper-parameters of every method: :class:`BaseConfig` and one Config dataclass per method
(``Method.Config``; see :mod:`flexplugin.engine.methods.base`). This module imports neither torch
nor Scipion, so the Scipion forms read the defaults from it (``dataclasses.fields``) and the
method modules import their Config from it.

Each field's comment gives its source, as the method's module docstring does
(``methods/cryodrgn.py``, ``hetacumn.py``, ``cryosphere.py``, ``hetsiren.py``): a place in the
method's paper (``[HetSIREN, Eq. 9]``; the works and their keys are in docs/references.md), the
authors' published code, or our choice.
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


# cryoDRGN (methods/cryodrgn.py; the paper cited by section, [cryoDRGN, ...]; where it is silent,
# the authors' published code).
@dataclass
class CryoDRGNConfig(BaseConfig):
    zdim: int = 8               # latent dimension: 1 (simulated sets) or 10 (real data)
                                # [cryoDRGN, Discussion "Practical considerations in choosing training
                                # hyperparameters"]
    lr: float = 1e-4            # Adam learning rate [cryoDRGN, Methods "CryoDRGN heterogeneous reconstruction"]
    batch_size: int = 8         # minibatch [cryoDRGN, Methods "CryoDRGN heterogeneous reconstruction"]
    enc_layers: int = 3         # encoder hidden layers: 256x3 (simulated, pilots)
                                # [cryoDRGN, Methods "Heterogeneous reconstruction of simulated datasets"]
    enc_dim: int = 256          # encoder width
                                # [cryoDRGN, Methods "Heterogeneous reconstruction of simulated datasets"]
    dec_layers: int = 3         # decoder hidden layers: 256x3 (pilots) [cryoDRGN, Methods "Deep coordinate
                                # network training on homogeneous structures"]; 512x5 for the
                                # simulations [cryoDRGN, Methods "Heterogeneous reconstruction of
                                # simulated datasets"]
    dec_dim: int = 256          # decoder width [cryoDRGN, Methods "Deep coordinate network training on
                                # homogeneous structures"; "Heterogeneous reconstruction of simulated
                                # datasets"]
    pe: str = "geom_lowf"       # geom_lowf | geom_ft | gaussian; geom_lowf for noisy data
                                # [cryoDRGN, Methods "Deep coordinate networks to represent 3D structure"]
    pe_sigma: float = 0.5       # gaussian features: std in units of D/2 radians (the authors' published code)
    beta: Optional[float] = None  # KL weight; None = 1/zdim (the authors' published code; the paper
                                  # names no weight)


# HetACUMN (methods/hetacumn.py; the paper cited by section, equation and appendix, [HetACUMN, ...];
# where it is silent, the published code of cryoDRGN and cryoFIRE, or our choice, as marked).
@dataclass
class HetACUMNConfig(BaseConfig):
    zdim: int = 8                 # latent dimension d = 8 [HetACUMN, §5.1]
    lr: float = 1.5e-4            # Adam learning rate [HetACUMN, §5.1]
    batch_size: int = 128         # 128 and 512 for the two simulated sets [HetACUMN, §5.1]; 128 (80S) fits
                                  # a CPU
    encoder: str = "resnet"       # resnet: ResNet-18 [HetACUMN, App. A1] | mlp: a ReLU MLP on the image
                                  # (ours; see mlp_dim)
    enc_dim: int = 64             # channels of the first ResNet-18 stage (64/128/256/512) [HetACUMN, App. A1]
    enc_stem: str = "auto"        # imagenet | small | auto: the ResNet stem; auto: small below D=128 (ours)
    enc_pool: bool = False        # flatten the last map ("flattened" [HetACUMN, App. A1]): it keeps
                                  # where the particle is, which the shift head needs (True: the standard
                                  # ResNet-18's global average pool)
    enc_zero_init: bool = False   # each residual block's last batch-norm scale starts at 0 (the block
                                  # starts as the identity; torchvision's zero_init_residual). Given
                                  # poses, D=32: the z-encoder alone learns faster (kNN / Spearman
                                  # 0.52/0.75 against 0.39/0.56 at epoch 4), joint training not
                                  # (0.70/0.87 against 0.72/0.87 at epoch 12): off
    mlp_dim: int = 512            # encoder "mlp": hidden width and ...
    mlp_layers: int = 3           # ... hidden layers (cryoDRGN's encoder shape, ours)
    head_dim: int = 256           # hidden width of the three heads [HetACUMN, App. A1]
    dec_lr_scale: float = 1.0     # the decoder's learning rate as a multiple of lr (ours; 1: one rate,
                                  # as the paper)
    dec_dim: int = 256            # decoder width [HetACUMN, App. A2]
    dec_layers: int = 3           # decoder hidden residual layers (the paper gives none: the default of
                                  # cryoFIRE's published code [cryoFIRE])
    pe_sigma: float = 0.5         # random Fourier features: std in units of D/2 cycles (as cryoDRGN's
                                  # published code; the paper gives none)
    lambda_z: float = 1e-4        # KL weight [HetACUMN, §4.2, Eq. 7]
    lambda_t: float = 1e-3        # weight of the shift L1 (times 1/2) [HetACUMN, §4.2, Eq. 7]
    lambda_p: float = 0.1         # CPP pose loss weight [HetACUMN, §4.3, Eq. 8]
    fch_epochs: int = 50          # conformation head frozen (z from the prior) for these epochs
                                  # [HetACUMN, §5.1]
    cpp: bool = True              # the auxiliary task; False is the paper's "-CPP" ablation [HetACUMN, §6]
    cpp_max_shift: Optional[float] = None  # CPP shifts U[-m, m]^2, m in box fractions; None: from the
                                  # data's shifts (see ``initialise``), else 0.0625 (8 px at D=128
                                  # [HetACUMN, App. B])
    snr: Optional[float] = None   # ASN signal-to-noise ratio; None: estimated from the data
                                  # [HetACUMN, §4.3.1, Eq. 9]
    ignore_poses: bool = True     # ab initio; False: refine the batch's poses, starting from them (ours)
    pose_weight: float = 0.1      # weight of that pull toward given poses: lambda_p's (our choice)
    given_pose_epochs: int = 0    # epochs rendering at the given poses if not ignore_poses (our choice)
    center_input: bool = True     # with given poses, the encoder sees each image moved by its given
                                  # shift (the particle centred; our choice, as cryoDRGN's encoder
                                  # input): see benchmarks/RESULTS.md, HetACUMN's ladder
    pose_uniformity: float = 0.0  # weight of a uniform-orientation prior on predicted rotations (ours,
                                  # ``_uniformity``). Ab initio without it the predicted views collapse
                                  # toward one axis (in-plane angles learned: median ||dR||^2 4.77 after
                                  # 36k images, D=32, SNR 1); at weight 1 they stay uniform but random
                                  # (6.87): off by default
    z_samples: int = 16           # encode: z is the posterior mean by importance sampling (this many
                                  # samples from the encoder's q(z|y), widened by z_widen, weighted by
                                  # the image's Gaussian likelihood at the particle's pose, noise from
                                  # the residual at q's mean, and the N(0, I) prior; our choice, as
                                  # cryoSPHERE's); 0: q's mean. Costs z_samples + 1 slices per
                                  # particle in encode. The demo's set and settings (1500 particles,
                                  # 4 states, SNR 1), k-means ARI / |Spearman|: q's mean 0.424 /
                                  # 0.876 (12 epochs) and 0.501 / 0.907 (16 epochs, another seed);
                                  # 16 samples 0.686 / 0.921 and 0.688 / 0.937; 8: 0.703 / 0.934
    z_widen: float = 4.0          # proposal std = z_widen x the encoder's std

    @classmethod
    def from_dict(cls, d):
        # Models saved before the stem was an option have the ImageNet stem; before the given
        # shift centred the encoder's input, an uncentred input.
        return super().from_dict(dict({"enc_stem": "imagenet", "center_input": False}, **d))


# cryoSPHERE (methods/cryosphere.py; the paper cited by section, equation and appendix,
# [cryoSPHERE, ...]; where it is silent, the authors' published code).
@dataclass
class CryoSPHEREConfig(BaseConfig):
    zdim: int = 8               # latent dimension (the authors' published code: latent_dimension 8)
    lr: float = 3e-5            # Adam lr of encoder and decoder [cryoSPHERE, App. B.3] (its EMPIAR-10180 run)
    batch_size: int = 128       # (the authors' published code: batch_size)
    lr_segments: float = 3e-4   # Adam lr of the segmentation's variational parameters [cryoSPHERE, App. B.3]
    segments: int = 20          # K, the maximum number of segments (the authors' published code: N_segm 20;
                                # 10 "still gives a good performance" [cryoSPHERE, App. B.2.6])
    tau: float = 0.05           # temperature of the segmentation softmax (the authors' published code:
                                # tau_segmentation)
    sigma: float = 2.0          # width (std, Å) of each residue's Gaussian (the authors' published code:
                                # sigma_gmm); at least one training pixel (our choice: narrower
                                # Gaussians alias on the grid)
    enc_dim: int = 256          # encoder width: residual MLP of constant width (our choice; the paper's
                                # EMPIAR-10180 encoder tapers 512, 256, 64, 64 [cryoSPHERE, App. B.3])
    enc_layers: int = 3         # encoder hidden blocks after the first layer: 4 hidden layers
                                # [cryoSPHERE, App. B.3]
    dec_dim: int = 512          # decoder width [cryoSPHERE, App. B.3: 512, 512]
    dec_layers: int = 1         # decoder hidden blocks after the first layer: 2 hidden layers
                                # [cryoSPHERE, App. B.3]
    kl_warmup: int = 150        # epochs of the linear warm-up of the KL of z, mu, sigma (the authors'
                                # published code: N_epochs // 2 with its 300 epochs); 0: full weight at once
    kl_cycle: int = 60          # epochs per cycle of the proportions' KL weight (rises over the first half)
                                # (the authors' published code: 5 cycles over 300 epochs, R = 0.5); 0: full
                                # weight at once
    l2: float = 1e-6            # L2 penalty on encoder and decoder weights (the authors' published code)
    continuity_weight: float = 0.0   # consecutive C-alpha distances kept [cryoSPHERE, App. A.1, Eq. 9],
                                # optional; the authors' published code: 0.1
    clash_weight: float = 0.0   # residues closer than clash_cutoff pushed apart [cryoSPHERE, App. A.1,
                                # Eq. 10], optional; the authors' published code: 0.1
    clash_cutoff: float = 4.0   # Å (the authors' published code: clashing_cutoff)
    clash_pairs_max: Optional[float] = None  # only pairs closer than this (Å) in the input model
                                # (the light version in the authors' published code for large models:
                                # 10); None: all pairs [cryoSPHERE, App. A.1]
    ligands: bool = False       # heavy ligands (>= 10 non-hydrogen atoms: cofactors, hemes, glycans,
                                # drugs) as pseudo-atoms that move with the nearest residues'
                                # segment; off: left out and counted in the log, as waters and
                                # ions always are (our choice; the paper models the protein only)
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


# HetSIREN (methods/hetsiren.py; the paper cited by section and equation, [HetSIREN, ...]; where it
# is silent, the authors' published code).
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
    zdim: int = 10                 # latent dimension, default 10
    #                                [HetSIREN, Methods "HetSIREN network architecture"]
    lr: float = 1e-4               # Adam learning rate; the paper's 1e-5 [HetSIREN, Methods "HetSIREN
    #                                cost function"] needs many more epochs (our choice: 1e-4 gave
    #                                |Spearman| 0.932 above at batch 8)
    batch_size: int = 8            # [HetSIREN, Methods "HetSIREN cost function"]
    encoder: str = "mlp"           # mlp | conv (the paper's default, "more robust")
    #                                [HetSIREN, Methods "HetSIREN network architecture"]; see below
    enc_box: int = 64              # conv encoder: images resized to 64 x 64 (the authors' published code)
    enc_dim: int = 256             # dense width after the conv trunk and in the heads (the authors'
    #                                published code)
    enc_layers: int = 4            # dense layers after the conv trunk (the authors' published code)
    head_layers: int = 3           # dense layers of each head (z, angles, shifts) (the authors' published
    #                                code)
    mlp_dim: int = 1024            # MLP encoder: "three hidden layers of 1024 neurons"
    #                                [HetSIREN, Methods "HetSIREN network architecture"]
    mlp_layers: int = 3            # [HetSIREN, Methods "HetSIREN network architecture"]
    dec_dim: Optional[int] = None  # meta-sine and hypernetwork width; None: max(zdim, 8)
    #                                ([HetSIREN, Methods "HetSIREN network architecture"]: zdim;
    #                                at zdim 1 a width of 1 fits the oracle's states worse: data loss
    #                                0.427 against 0.391 at 8, encoder alone |Spearman| 0.93 vs 0.96)
    dec_layers: int = 3            # residual meta-sine layers after the first ("three" [HetSIREN, Methods
    #                                "HetSIREN network architecture"]; the authors' published code)
    vox_init: float = 1.0          # scale of the final voxel layer's initial weights (1: the authors'
    #                                published code)
    hyper_layers: int = 1          # ReLU layers of each hypernetwork (the authors' published code)
    omega0: float = 1.0            # first meta-sine layer's frequency (the authors' published code: 30);
    #                                1 after (the same code)
    loss: str = "mse"              # mse (default) | corr (correlation) [HetSIREN, Eq. 5]
    multires: bool = True          # add the half-resolution (2R) comparison [HetSIREN, Eq. 10]. Off (the
    #                                authors' published code by default: its second term is at full
    #                                size): D=64 / SNR 0.1 (seed 0) |Spearman| 0.913 and mean FSC=0.5
    #                                12.76 Å against 0.907 and 13.30 Å on; D=32 maps 0.17-0.29 Å
    #                                better, but the latent 0.01-0.03 lower and, with a focus mask,
    #                                0.882 against 0.933 (the demo's ARI 0.58 against 0.69): on
    multires_until: float = 0.5    # the half-resolution term is on for this fraction of the run's epochs,
    #                                then off (coarse to fine; our choice). D=64 / SNR 0.1, 20 epochs,
    #                                seeds 0 / 1: |Spearman| 0.906 / 0.919 and state maps at 12.80 /
    #                                12.85 Å against 0.913 / 0.925 and 13.30 / 13.36 Å at 1 (the term
    #                                throughout). Tests' SNR 1 motion (D=32, 8 epochs, seed 0): 0.925
    #                                and 7.38 Å against 0.928 and 7.25 Å (benchmarks/RESULTS.md)
    l1: float = 0.1                # lambda_1, L1 of the map: paper 1.0 [HetSIREN, Eq. 7], the authors'
    #                                published Scipion protocol 0.1
    neg: float = 0.1               # lambda_2, negative values: paper 1.0 [HetSIREN, Eq. 8]; the authors'
    #                                published code ties it to lambda_1
    tv: float = 0.1                # lambda_3, total variation [HetSIREN, Eq. 9]
    l2grad: float = 0.1            # lambda_4, squared gradient [HetSIREN, Eq. 9]
    focus: float = 10.0            # lambda_5, distribution matching inside the mask (the authors' published
    #                                code: 100; the paper gives none [HetSIREN, Eq. 12]); on the tests'
    #                                motion with a mask and a reference (8 epochs)
    #                                |Spearman| 0.571 at 100 (z barely moves the map), 0.933 at 10,
    #                                0.937 at 1, 0.941 at 0
    refine_poses: bool = False     # learn pose corrections [HetSIREN, Discussion; Supp. Fig. 4]; off unless
    #                                asked (our choice)
    decouple: bool = False         # pose and CTF decoupling [HetSIREN, Eqs. 3-4]; off unless asked
    #                                (our choice)
    lambda_pose: float = 1e-3      # lambda_p (the authors' published Scipion protocol; the paper gives
    #                                no value)
    lambda_ctf: float = 1e-3       # lambda_c (the authors' published Scipion protocol; the paper gives
    #                                no value)
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
    #   refined poses), with the consensus started from zero: 5.1, the map and the poses drifted
    #   together. With the consensus started from the reconstruction (lr 3e-3, 6 epochs,
    #   benchmarks/hetsiren_pose_oracle.py): 2 steps per training step give 2.94 at D=32 (encode
    #   only: 2.92; ground-truth map: 2.62) and 2.10 at D=64 (encode only: 3.15, the map learned
    #   from the perturbed poses stays blurred; ground-truth map: 1.22); so 2 by default.
    pose_heads: bool = False       # the encoder's pose heads [HetSIREN, Supp. Fig. 4]; off: see above
    pose_warmup: int = 2           # epochs with every correction held at zero while the map forms (our choice)
    pose_reg: float = 1e-3         # L2 of the heads' corrections (deg^2 + px^2) toward zero (our choice)
    pose_search: int = 3           # Gauss-Newton steps of the local refinement in encode (our choice; 0: off;
    #                                5 steps or a prior of 2 or 4 degrees gave 3.5-3.7 on 300 particles)
    pose_search_train: int = 2     # steps per training step after the warm-up, continuing from the
    #                                particle's correction of its previous epoch (each step costs
    #                                two projections)
    pose_lowpass: float = 0.0      # Gaussian low-pass (sigma, cycles/px) of the local refinement's
    #                                comparison; 0: none (0.1 and 0.15 lost accuracy: 4.1, 3.4 with the
    #                                ground-truth map against 2.7 without)
    pose_sigma_deg: float = 3.0    # prior of the local refinement: expected error of the input
    pose_sigma_px: float = 1.0     #   rotations (deg per axis) and shifts (px per axis) (our choice)
    blur_sigma: float = 0.0        # Gaussian blur of projections, px; the authors' published code: 1 px
    #                                after a nearest-pixel splat; after our bilinear splat 0 is closest
    #                                to exact projections
    #                                (relative error 0.4% at 0, 1.5% at 0.5, 6.8% at 1 px; measured)
    ctf_pad: int = 2               # zero padding before applying the CTF (2: the authors' published code)
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
    ref_envelope: bool = False     # with a reference map, the image model multiplies every projection
    #                                by a radial envelope fitted once at the start: per Fourier shell,
    #                                the regression of the images on the reference's projections
    #                                (1 from the first shell without a measurable correlation). It
    #                                matches a reference's amplitudes (a filtered or differently scaled
    #                                map) to the data while the decoded maps stay in the reference's
    #                                frame (outside the mask: the reference itself). Our choice; off:
    #                                on the D=64 / SNR 0.1 focus run it cut what z learns of the view
    #                                (R^2 0.03-0.08 against 0.10-0.16) but not the state's share
    #                                (linear R^2 0.68 against 0.72; |Spearman| of PC1 0.155 against
    #                                0.813, the state then on PC2, 0.803); at D=32 neutral (SNR 0.1:
    #                                0.832 either way; SNR 1: 0.911 against 0.901)
