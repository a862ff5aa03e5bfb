"""HetACUMN (Chen, Wang, Yao: "Improved cryo-EM pose estimation and 3D classification through
latent-space disentanglement"): amortized inference of pose and conformation, with the
auxiliary conditional pose prediction task. Written from the paper (cited by section, equation
and appendix, [HetACUMN, ...], see docs/references.md); where it is silent, from the published code
of cryoDRGN and cryoFIRE, or our choice, as marked. There is no public code of the method.

Encoder. A ResNet-18 ([ResNet]: 7x7 stride-2 stem, max pool, four stages of two basic blocks with
64/128/256/512 channels, batch norm) on the real-space image (windowed and divided by the data's
standard deviation, as the batches come), without the fully connected layer; the flattened last
feature map (or its global average, ``enc_pool``) feeds three heads of hidden width 256
[HetACUMN, App. A1]: rotation (the continuous 6D representation [Rot6D], Gram-Schmidt to a matrix;
our choice, the paper names none), in-plane shift (pixels, the RELION origin: moving the image by
it centres the particle) and conformation (mean, log-variance). ``encoder`` "mlp" replaces the
ResNet by a ReLU MLP on the flattened image (ours; benchmarks/RESULTS.md). The rotation is a
RELION matrix A (``geometry/so3.py``): predicted poses compare directly with a star file's.

Decoder. The Hartley-space coordinate network of :mod:`.cryodrgn` (half-space evaluation with
Friedel symmetry, residual ReLU MLP of width 256 [HetACUMN, App. A2], ``decode_volume``), with
Gaussian random Fourier features of the coordinates [HetACUMN, App. A2] (3 * D/2 frequencies
~ N(0, (0.5 D/2)^2), as cryoDRGN's published code; the paper gives neither) concatenated with z.
The image model is cryoDRGN's: the central slice at A^T k times the CTF, compared with the image
translated by the predicted shift (equivalent to translating the prediction), mean squared error
over the circle |k| < D/2 without DC.

Image task [HetACUMN, §4.2, Eqs. 4-7]. Each image and its horizontal mirror R_h[I] (x -> -x about
the box centre; its CTF mirrored alike) are encoded and decoded; per image the path with the lower
error wins (L_sym = min, Eq. 5), and its KL (lambda_z) and shift L1 (lambda_t / 2) are added. The
mirror of a projection under A is the projection of the same map under M A with
M = diag(-1, 1, -1), with shift (-t_x, t_y); ``encode`` reports the winning path's z and its
pose mapped back this way (so it always describes the image itself). For the first ``fch_epochs``
epochs the conformation head is frozen and the decoder is fed z ~ N(0, I) without KL (FCH,
[HetACUMN, §4.2, §5.1]).

Auxiliary task, CPP [HetACUMN, §4.1, §4.3, Eq. 8]. Poses drawn uniformly on SO(3) x [-m, m]^2
pixels, conformations from the image task's posterior of the same step (PDS; the prior during FCH),
the frozen decoder renders them with the CTFs of the batch's particles (shuffled), the images are
translated, adaptive synthetic noise is added (ASN, Eqs. 9-10: noise variance = variance of the
current clean synthetic batch / the data's SNR), windowed like the data, encoded, and the pose is
supervised: lambda_p ((1/9) ||R - R_pred||_F^2 + (1/2) ||t - t_pred||_1). The training loop makes
one optimisation step per batch; the two tasks alternate *within* each step (image task on the
batch, then CPP on a synthetic batch of the same size, separate forward passes) and their losses
are summed (our choice: 1:1 alternation, without a second optimizer step). The encoder's batch-norm
running statistics (used by ``encode``) are those of the real images only: the CPP pass does not
update them.

SNR (Eq. 9). Estimated during training from the first ``SNR_IMAGES`` real images: noise
variance from the outer ring r >= 0.85 D/2 (outside the particle; with the soft window applied
to the data, each pixel is weighted by the window there), image variance inside r < 0.85 D/2, both
centred on the particle (at minus the particle file's shift, whether or not poses are ignored;
the box centre when the file has no shifts),
SNR = (var_I - var_noise) / var_noise. The synthetic images use the same inner disc for their
signal variance. ``Config.snr`` overrides the estimate (same definition).

Given poses (ours). With ``ignore_poses`` False the encoder refines the batch's poses instead of
predicting them from nothing: the rotation and shift heads also receive the given pose (its 6D
representation and the shift in box fractions) and output a correction, R = dR . A_given and
t = t_given + dt, with their last layers initialised to dR = I, dt = 0, so training starts
exactly at the given poses. With ``center_input`` (the default) the encoder sees each image
moved by its given shift, the particle centred, as cryoDRGN's encoder input is (the CPP images
alike, by their given shifts). (Regressing a rotation from an image is slow to learn: the encoder
pulled toward the given poses by a loss alone, or even trained on them with the pose loss at
weight 1, stays near the random error for several epochs at D=32 and 1600 images.) A given pose
fixes the hand, so only the image itself is encoded: the mirror path, at M A_given, would fit the
same data equally well, the winner of the minimum would be a coin toss, and z would come from
either of two encodings. The corrections are regularised toward zero with the CPP
pose loss between R, t and the given pose times ``pose_weight``; for the first
``given_pose_epochs`` epochs the decoder renders at the given poses. The CPP task supervises the
refinement: each synthetic image comes with its true pose perturbed by ``REFINE_NOISE_DEG`` /
``REFINE_NOISE_PX`` as the given one. A batch without poses (all identity, zero shifts) is
refined from the identity.
"""
import contextlib

import numpy as np
import torch
from torch import nn

from ..geometry import so3
from ..geometry.ctf import ctf_2d
from ..geometry.fourier import (
    fft2_center,
    freqs_1d,
    iht2_center,
    phase_shift_2d,
    shift_images,
    soft_circular_window,
)
from ..configs import HetACUMNConfig
from .base import Encoding, Method
from .cryodrgn import CryoDRGN, PositionalEncoding, ResidualMLP, _image_lattice
from .posterior import posterior_mean, sample_generator
from .hetacumn_layers import _head, make_encoder, random_rotations_torch

# Real images used for the SNR estimate of the adaptive synthetic noise (our choice: the
# estimate of Eq. 9 is a dataset statistic; a few thousand images fix it to ~1%).
SNR_IMAGES = 4096
# Inner radius (fraction of D/2) separating the particle disc from the noise ring: where the
# data's soft window starts to fall (our choice; the paper's "red circle" of Fig. 2).
NOISE_RING = 0.85
# The horizontal mirror of a projection under A is the projection under MIRROR @ A.
MIRROR = torch.diag(torch.tensor([-1.0, 1.0, -1.0]))
# Refinement of given poses: scale of the pose errors simulated on the CPP task (standard deviation
# of the rotation-vector components, degrees, and of the shift components, pixels; our choice:
# the errors of a consensus refinement of a heterogeneous set).
REFINE_NOISE_DEG = 10.0
REFINE_NOISE_PX = 1.0
# ``encode`` normalises the encoder's batch-norm layers with the statistics of its own batch (real
# images and mirrors, as in training) when it holds at least this many images, else with the
# running statistics (see ``encode``).
ENCODE_BATCH_STATS_MIN = 16
# CPP shift range (box fractions) when the particle file has no shifts
# [HetACUMN, App. B: 8 px at D=128].
DEFAULT_CPP_MAX_SHIFT = 0.0625
# 6D representation of the identity (the first two rows of I).
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class HetACUMN(Method):
    """HetACUMN: ResNet encoder of pose and conformation, Hartley coordinate decoder, CPP task."""
    name = "hetacumn"
    Config = HetACUMNConfig
    needs_poses = False
    # On a CPU "auto" precision is float32: under bfloat16 autocast (torch 2.13 CPU, AVX-512 BF16)
    # the weight gradient of a ResNet convolution on 1x1 feature maps (the last stage at D <= 32)
    # came out non-finite in some steps and not in others for the same inputs (steps skipped, runs
    # of one seed no longer equal). "--precision bf16" still forces it.
    cpu_bfloat16 = False

    # The Hartley decoder and its volume evaluation are cryoDRGN's (same attributes: pe, decoder,
    # half_k, zdim, data_info).
    _decode = CryoDRGN._decode
    _predict = CryoDRGN._predict
    decode_volume = CryoDRGN.decode_volume

    def __init__(self, config, data_info, inputs=None):
        super().__init__(config, data_info, inputs)
        d = data_info.box
        self.encoder = make_encoder(config, d)
        nf = self.encoder.n_features
        # Refinement of given poses: the pose heads also see the given pose (6D + shift).
        self.refine = not config.ignore_poses
        n_pose = 8 if self.refine else 0
        self.rot_head = _head(nf + n_pose, config.head_dim, 6)
        self.shift_head = _head(nf + n_pose, config.head_dim, 2)
        if self.refine:                        # start at dR = I, dt = 0
            for head, bias in ((self.rot_head, IDENTITY_6D), (self.shift_head, (0.0, 0.0))):
                nn.init.zeros_(head[-1].weight)
                with torch.no_grad():
                    head[-1].bias.copy_(torch.tensor(bias))
        self.z_head = _head(nf, config.head_dim, 2 * config.zdim) if config.zdim > 0 else None
        self.pe = PositionalEncoding("gaussian", d, config.pe_sigma)
        self.decoder = ResidualMLP(3 * d, config.dec_dim, config.dec_layers, 2, n_cond=config.zdim)
        half_idx, mirror_idx, _, kfrac = _image_lattice(d)
        self.register_buffer("half_idx", half_idx, persistent=False)
        self.register_buffer("mirror_idx", mirror_idx, persistent=False)
        self.register_buffer("half_k", kfrac, persistent=False)
        self.register_buffer("loss_idx", torch.cat([half_idx[1:], mirror_idx]), persistent=False)
        self.register_buffer("pred_idx", torch.cat([half_idx, mirror_idx]), persistent=False)
        # x -> -x about index D//2 (the same permutation mirrors k_x in Fourier space).
        self.register_buffer("flip_idx", (d - torch.arange(d)) % d, persistent=False)
        window = soft_circular_window(d) if data_info.window else torch.ones(d, d)
        f = freqs_1d(d) * 2
        r = torch.sqrt(f[None, :] ** 2 + f[:, None] ** 2)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("disc", r < NOISE_RING, persistent=False)
        # pixel coordinates (x, y) about the box centre, in units of D/2
        self.register_buffer("grid2", torch.stack([f[None, :].expand(d, d), f[:, None].expand(d, d)], -1),
                             persistent=False)
        self.register_buffer("mirror", MIRROR.clone(), persistent=False)
        # Running sums for the SNR estimate: images seen, sum of image and of noise variances.
        self.register_buffer("snr_stats", torch.zeros(3, dtype=torch.float64))

    def parameter_groups(self):
        """One group, or with ``dec_lr_scale`` != 1 the decoder's parameters in a group of their
        own at that multiple of the learning rate."""
        if self.config.dec_lr_scale == 1:
            return super().parameter_groups()
        dec = [p for k, p in self.named_parameters() if k.startswith(("decoder.", "pe."))]
        ids = {id(p) for p in dec}
        return [dict(params=[p for p in self.parameters() if id(p) not in ids]),
                dict(params=dec, lr_scale=self.config.dec_lr_scale)]

    # -- encoder ---------------------------------------------------------------------------------
    def _encode(self, x, with_z=True, given=None):
        """Real images (B, D, D) -> (rotations (B, 3, 3), shifts px (B, 2), mu, logvar or None).
        When refining, ``given`` = (rotations, shifts px) of the images (None: identity, 0)."""
        x, pose = x.float(), None
        if self.refine:
            n = len(x)
            if given is None:
                given = (torch.eye(3, device=x.device).expand(n, 3, 3), x.new_zeros(n, 2))
            g_rot, g_t = given[0].float(), given[1].float()
            if self.config.center_input:         # the particle moved to the centre
                x = shift_images(x, g_t)
            pose = torch.cat([g_rot[:, :2].flatten(1), g_t / self.data_info.box], 1)
        h = self.encoder(x)
        hp = h if pose is None else torch.cat([h, pose.to(h.dtype)], 1)
        rot = so3.sixd_to_matrix_torch(self.rot_head(hp).float())
        shift = self.shift_head(hp).float()
        if self.refine:
            rot, shift = rot @ g_rot, shift + g_t
        if self.z_head is None or not with_z:
            return rot, shift, None, None
        out = self.z_head(h).float()
        return rot, shift, out[:, :self.zdim], out[:, self.zdim:]

    def initialise(self, dataset, rows, epochs, log=print):
        """Refuses a run that would end with the conformation head frozen; sets the CPP shift
        range from the data when ``cpp_max_shift`` is None: the 99th percentile of the particles'
        shift components (at least 1 px) when the particle file has shifts (a consensus
        refinement's, also when the poses are ignored), else the paper's 0.0625 D. The value is
        kept in the config (and so in the checkpoint)."""
        if self.zdim > 0 and epochs <= self.config.fch_epochs:
            raise ValueError("the conformation head stays frozen for the first %d epochs (--fch-epochs), "
                             "so %d epochs would end with z from an untrained head: train for more "
                             "epochs than --fch-epochs, or lower it" % (self.config.fch_epochs, epochs))
        if self.config.cpp_max_shift is None:
            d = self.data_info.box
            shifts = dataset.table.shifts_A
            t = (np.abs(np.asarray(shifts, dtype=np.float64)[rows]) / dataset.apix
                 if shifts is not None else np.zeros(0))
            if t.size and t.max() > 0:
                m = min(max(float(np.percentile(t, 99)), 1.0), d / 4) / d
                source = "the particles' shifts (99th percentile)"
            else:
                m, source = DEFAULT_CPP_MAX_SHIFT, "no shifts in the particle file: the paper's 0.0625 D"
            self.config.cpp_max_shift = m
            log("hetacumn: auxiliary task shifts up to %.2f px, from %s" % (m * d, source))

    def _fch(self):
        return self.zdim > 0 and self.epoch <= self.config.fch_epochs

    # -- data ------------------------------------------------------------------------------------
    def _paths(self, batch, mirror=True):
        """The images and (``mirror``) their mirrors stacked (2B, D, D), their centred FTs, and
        their CTFs (2B, D*D) or None."""
        x = batch["images"].float()
        f = fft2_center(x)
        ctf = None
        if "ctf" in batch:
            ctf = ctf_2d(x.shape[-1], self.data_info.apix, batch["ctf"], device=x.device)
        if not mirror:
            return x, f, None if ctf is None else ctf.flatten(1)
        images = torch.cat([x, x[..., self.flip_idx]])
        fts = torch.cat([f, f[..., self.flip_idx]])
        if ctf is not None:
            ctf = torch.cat([ctf, ctf[..., self.flip_idx]]).flatten(1)
        return images, fts, ctf

    def _errors(self, fts, ctf, rot, shift, z):
        """Per-image mean squared error (N,) of the Hartley images translated by ``shift``
        against the decoder's slices at ``rot``."""
        g = phase_shift_2d(fts, shift)
        y = ((g.real - g.imag) / fts.shape[-1]).flatten(1)[:, self.loss_idx]
        pred = self._predict(rot, z)[:, 1:]
        if ctf is not None:
            pred = pred * ctf[:, self.loss_idx]
        return ((pred - y) ** 2).mean(1)

    def _given_poses(self, batch):
        """(rotations, shifts) of the batch, or None when poses are ignored or absent (all
        identity rotations and zero shifts: a star without angles)."""
        if self.config.ignore_poses:
            return None
        rot, t = batch["rotations"].float(), batch["shifts_px"].float()
        eye = torch.eye(3, device=rot.device)
        if torch.allclose(rot, eye.expand_as(rot)) and not t.abs().any():
            return None
        return rot, t

    @torch.no_grad()
    def _update_snr(self, x, shifts_px):
        if self.snr_stats[0] >= SNR_IMAGES:
            return
        x = x.float()
        # The disc and the ring are centred on each particle, at -shift (the particle file's
        # shifts; zero when it has none).
        centre = -shifts_px.float() / (self.data_info.box / 2)
        r = (self.grid2 - centre[:, None, None, :]).norm(dim=-1)
        disc = r < NOISE_RING
        w = self.window * ~disc
        w2 = (w ** 2).sum((1, 2))
        mean = (x * w).sum((1, 2)) / w2
        noise = ((x - mean[:, None, None] * w) ** 2 * (w > 0)).sum((1, 2)) / w2
        n_disc = disc.sum((1, 2))
        image_mean = (x * disc).sum((1, 2)) / n_disc
        image = ((x - image_mean[:, None, None]) ** 2 * disc).sum((1, 2)) / (n_disc - 1)
        self.snr_stats += torch.stack([torch.tensor(float(len(x))), image.sum().double().cpu(),
                                       noise.sum().double().cpu()]).to(self.snr_stats.device)

    def current_snr(self):
        """The SNR of the adaptive synthetic noise: ``Config.snr`` or the data estimate."""
        if self.config.snr is not None:
            return float(self.config.snr)
        n, image, noise = (float(v) for v in self.snr_stats)
        if n == 0 or noise <= 0:
            return 1.0
        return min(max((image - noise) / noise, 1e-3), 1e3)

    # -- the two tasks ---------------------------------------------------------------------------
    def _image_task(self, batch):
        n = len(batch["images"])
        given = self._given_poses(batch)
        paths = 1 if given is not None else 2          # given poses fix the hand: no mirror path
        images, fts, ctf = self._paths(batch, mirror=paths == 2)
        fch = self._fch()
        rot, shift, mu, logvar = self._encode(images, with_z=not fch, given=given)
        if self.zdim == 0:
            z = rot.new_zeros(paths * n, 0)
        elif fch:
            z = torch.randn(paths * n, self.zdim, device=rot.device)
        else:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        use_rot, use_shift = rot, shift
        if given is not None and self.epoch <= self.config.given_pose_epochs:
            use_rot, use_shift = given
        err = self._errors(fts, ctf, use_rot, use_shift, z).view(paths, n)
        win = err.argmin(0)                                    # 0: the image, 1: its mirror
        pick = win * n + torch.arange(n, device=win.device)
        mse = err.min(0).values.mean()
        shift_l1 = 0.5 * shift[pick].abs().sum(1).mean()
        loss = mse + self.config.lambda_t * shift_l1
        out = {"mse": float(mse.detach()), "shift_l1": float(shift_l1.detach()),
               "mirror_frac": float(win.float().mean())}
        if mu is not None:
            kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1))[pick].mean()
            loss = loss + self.config.lambda_z * kl
            out["kl"] = float(kl.detach())
        if given is not None:
            prior = self._pose_loss(rot, shift, *given)
            loss = loss + self.config.pose_weight * prior
            out["pose_prior"] = float(prior.detach())
        elif self.config.pose_uniformity > 0:
            uniform = self._uniformity(rot)
            loss = loss + self.config.pose_uniformity * uniform
            out["uniformity"] = float(uniform.detach())
        posterior = None
        if mu is not None:
            posterior = (mu[pick].detach(), logvar[pick].detach())
        return loss, out, posterior

    @staticmethod
    def _uniformity(rot):
        """Distance of a batch of rotations from the moments of the uniform distribution on SO(3):
        ||mean R||_F^2 + ||mean vec(R) vec(R)^T - I/3||_F^2 (E[R_ij R_kl] = d_ik d_jl / 3)."""
        v = rot.reshape(len(rot), 9)
        second = v.T @ v / len(v) - torch.eye(9, device=v.device) / 3
        return (v.mean(0) ** 2).sum() + (second ** 2).sum()

    @staticmethod
    def _pose_loss(rot, shift, rot_true, shift_true):
        """(1/9) ||R - R_pred||_F^2 + (1/2) ||t - t_pred||_1, batch mean [HetACUMN, Eq. 8]."""
        return (((rot - rot_true) ** 2).sum((1, 2)) / 9
                + 0.5 * (shift - shift_true).abs().sum(1)).mean()

    def _synthetic(self, n, ctf_params, posterior, device):
        """A CPP batch: (noisy windowed images (n, D, D), rotations, shifts px)."""
        d = self.data_info.box
        rot = random_rotations_torch(n, device)
        m = (self.config.cpp_max_shift if self.config.cpp_max_shift is not None
             else DEFAULT_CPP_MAX_SHIFT) * d
        shift = (torch.rand(n, 2, device=device) * 2 - 1) * m
        if self.zdim == 0:
            z = torch.zeros(n, 0, device=device)
        elif posterior is None:                       # FCH: the prior
            z = torch.randn(n, self.zdim, device=device)
        else:                                         # PDS: the posterior of the image task
            mu, logvar = posterior
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        with torch.no_grad():
            vals = self._predict(rot, z).float()
            if ctf_params is not None:
                perm = torch.randperm(len(ctf_params), device=ctf_params.device)
                c = ctf_2d(d, self.data_info.apix, ctf_params[perm][:n], device=device).flatten(1)
                vals = vals * c[:, self.pred_idx]
            h = vals.new_zeros(n, d * d)
            h[:, self.pred_idx] = vals
            # No DC term: the image loss never trains it, and real (normalised) images have none.
            h[:, self.half_idx[0]] = 0
            # Hartley values are HT(x) / D: the real image is D * iht2(h); the particle sits at
            # -shift (moving the image by +shift centres it, as for the data).
            x = iht2_center(h.view(n, d, d)) * d
            clean = shift_images(x, -shift)
            signal = clean[:, self.disc].var(1).mean()
            sigma = torch.sqrt(signal / self.current_snr())
            noisy = (clean + sigma * torch.randn_like(clean)) * self.window
        return noisy, rot, shift

    def _cpp_task(self, batch, posterior):
        n = len(batch["images"])
        noisy, rot_true, shift_true = self._synthetic(n, batch.get("ctf"), posterior,
                                                      batch["images"].device)
        given = None
        if self.refine:                       # the true pose with simulated errors as the given one
            v = torch.randn(n, 3, dtype=torch.float64) * (REFINE_NOISE_DEG * torch.pi / 180)
            noise = torch.as_tensor(so3.axis_angle_to_matrix(v.numpy()), dtype=torch.float32,
                                    device=rot_true.device)
            given = (noise @ rot_true, shift_true + REFINE_NOISE_PX * torch.randn_like(shift_true))
        # The synthetic batch is normalised by its own statistics but must not enter the batch-norm
        # running statistics: those serve ``encode`` (eval mode) on real images, and a mixture of
        # real and synthetic statistics (whose scale follows the decoder) shifts every feature.
        with self._frozen_bn_stats(batch_stats=True):
            rot, shift, _, _ = self._encode(noisy, with_z=False, given=given)
        loss = self.config.lambda_p * self._pose_loss(rot, shift, rot_true, shift_true)
        with torch.no_grad():
            rot_err = ((rot - rot_true) ** 2).sum((1, 2)).median()
        return loss, {"cpp": float(loss.detach()), "cpp_rot_err": float(rot_err)}

    @contextlib.contextmanager
    def _frozen_bn_stats(self, batch_stats):
        """Batch norm of the encoder without updating its running statistics; normalising with
        the batch's own statistics (``batch_stats``) or the running ones."""
        bns = [b for b in self.encoder.modules() if isinstance(b, nn.BatchNorm2d)]
        saved = [(b.momentum, b.training) for b in bns]
        for b in bns:
            b.momentum = 0.0
            b.train(batch_stats)
        try:
            yield
        finally:
            for b, (mom, mode) in zip(bns, saved):
                b.momentum = mom
                b.train(mode)

    # -- contract --------------------------------------------------------------------------------
    def training_step(self, batch):
        if self.training:
            self._update_snr(batch["images"], batch["shifts_px"])
        loss, out, posterior = self._image_task(batch)
        if self.config.cpp:
            cpp_loss, cpp_out = self._cpp_task(batch, posterior)
            loss = loss + cpp_loss
            out.update(cpp_out)
        out["snr"] = self.current_snr()
        return dict(loss=loss, **out)

    @torch.no_grad()
    def encode(self, batch):
        """z (posterior mean), RELION rotations and shifts (Å) of the winning path (image or
        mirror, by the image error at the posterior mean), mapped back to the image.

        Batch norm uses the batch's statistics (without updating the running ones) when it holds
        at least ``ENCODE_BATCH_STATS_MIN`` images: the running statistics, an average over the
        last steps of weights that keep changing, differ enough from those of the final weights
        to move the rotations (measured: median ||dR||^2 to the truth 0.50 with the running
        statistics against 0.23 with batch statistics, the same as with running statistics
        recomputed over the whole set at the final weights)."""
        n = len(batch["images"])
        given = self._given_poses(batch)
        images, fts, ctf = self._paths(batch, mirror=given is None)
        with self._frozen_bn_stats(batch_stats=self.training or n >= ENCODE_BATCH_STATS_MIN):
            rot, shift, mu, logvar = self._encode(images, given=given)
        z = mu if mu is not None else rot.new_zeros(len(images), 0)
        path = torch.arange(n, device=z.device)       # the rows of the winning path
        if given is None:
            err = self._errors(fts, ctf, rot, shift, z).view(2, n)
            path = torch.where(err[1] < err[0], path + n, path)
        if self.zdim > 0 and self.config.z_samples > 0:
            z = self._posterior_mean(fts[path], None if ctf is None else ctf[path], rot[path],
                                     shift[path], z[path], (0.5 * logvar[path]).exp(),
                                     sample_generator(batch, z.device))
        else:
            z = z[path]
        if given is not None:
            return Encoding(z=z, rotations=rot, shifts_A=shift * self.data_info.apix)
        flip = path >= n
        rot = torch.where(flip[:, None, None], self.mirror @ rot[n:], rot[:n])
        shift = torch.where(flip[:, None], shift[n:] * shift.new_tensor([-1.0, 1.0]), shift[:n])
        return Encoding(z=z, rotations=rot, shifts_A=shift * self.data_info.apix)

    def _posterior_mean(self, fts, ctf, rot, shift, mu, std, gen):
        """E[z | image] (``posterior.posterior_mean``) at the images' poses; the likelihood is
        that of the image loss (the Hartley components compared in training)."""
        s, p = self.config.z_samples, len(self.loss_idx)

        def residuals(zs, rows):
            rep = lambda t: None if t is None else t[rows].repeat_interleave(s + 1, 0)  # noqa: E731
            err = self._errors(rep(fts), rep(ctf), rep(rot), rep(shift), zs.reshape(-1, self.zdim))
            return err.view(len(zs), s + 1) * p, p
        return posterior_mean(mu, std, residuals, s, self.config.z_widen, gen)
