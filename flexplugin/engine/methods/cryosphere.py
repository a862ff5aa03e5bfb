"""cryoSPHERE (Ducrocq et al., ICLR 2025, "cryoSPHERE: single-particle heterogeneous reconstruction
from cryo EM"): an atomic model cut into learned segments that move as rigid bodies. Written from
the paper (cited by section and equation, [cryoSPHERE, ...], see docs/references.md) and, where it
is silent, the authors' published code; what comes from neither is marked "our choice".

Structure. One pseudo-atom per residue at its C-alpha (``inputs["atomic_model"]``), a Gaussian of
width ``sigma`` and amplitude the residue's electrons [cryoSPHERE, §3.1, Eq. 1; the authors'
published code]. The model is taken as fitted into the consensus map, whose voxel 0 is at the
origin: the box centre (the rotation centre of the poses, voxel D//2) is at ``box_A / 2`` in the
model's coordinates. Inside, residues are in Å relative to that centre; ``decode_structure``
returns them in the model's own frame.

Segmentation [cryoSPHERE, §3.3, Eq. 6; the authors' published code]. K components of a Gaussian
mixture on the residue index i = 0..R-1 (file order): W_ik = softmax_k([log pi_k - (i - mu_k)^2 /
(2 sigma_k^2)] / tau), with a Gaussian variational posterior over (mu_k, sigma_k, logit pi_k) and
the data-dependent "uniform" prior of the authors' published code (mu_k centred on the k-th of K
equal blocks, std 10; sigma_k ~ N(R/K, 10^2) passed through ELU + 1; logits ~ N(0, 1)). One sample
per image per step; the posterior means for decoding.

Chains (our choice). File order puts the last residue of one chain next to the first of the next,
although they are not bonded and may lie far apart. The residues are therefore cut into parts, each
a chain (a run of residues with one chain id), and every segment belongs to one part: W_ik = 0 for
a residue outside segment k's part (its logit is -inf before the softmax). A segment so holds
residues of one chain, or, where chains outnumber segments, the whole of the few consecutive chains
of its part (``segment_parts``: adjacent parts with the fewest residues together are merged into a
part of one segment until K suffice; the other segments go one at a time to the chain with the most
residues per segment). The prior above is taken per part (mu_k on the k-th of the part's equal
blocks, sigma_k ~ N(part length / its segments, 10^2)). One chain (or a model without chain ids) is
one part of K segments: the mixture above unchanged. The restriction holds for every value of the
mixture's parameters, which no gap between chains on the index axis guarantees (a wide component
centred in a gap wins the chain ends on both sides).

Deformation [cryoSPHERE, §3.4; the authors' published code]. The decoder maps z to 6 numbers per
segment: a translation t_k (Å) and the vector part v_k of the quaternion (1, v_k), i.e. a rotation
by theta_k = 2 atan |v_k| about u_k = v_k / |v_k| (a zero output is the identity). Residue i is
rotated about the box centre by W_ik theta_k about u_k for k = 0..K-1 in turn, then translated by
sum_k W_ik t_k.

Image formation [cryoSPHERE, §3.1, Eq. 2; the authors' published code]. The moved residues are
posed (RELION matrices, known poses), projected exactly as separable 2D Gaussians at the particle's
offset (-origin) with ``simulate.project_atoms``, multiplied in Fourier space by the CTF (RELION
sign: protein bright, so no -CTF as in the authors' published code), and windowed like the data
(``data.ParticleDataset``).

Encoder [cryoSPHERE, §3.5; the authors' published code]. q(z | image) = N(mu, diag s^2), s =
ELU + 1 [cryoSPHERE, §3.5], from a residual MLP (the one of cryoDRGN) on the image centred by its
known shift (our choice: the authors' published code feeds the uncentred image) inside the
circle of radius D/2. ``zdim = 0`` is the rigid, homogeneous model: one learned transform per
segment shared by all images (no encoder, no KL on z).

Loss [cryoSPHERE, §3.6, Eqs. 7-8]: -correlation (dot product over the std of each image, per
pixel), plus the KL terms of z and of the mixture divided by the number of pixels, with the
schedules of the authors' published code (linear warm-up for z, mu and sigma; a cyclical one for
the proportions), an L2 penalty on the network weights (the authors' published code), and the
optional continuity and clash terms [cryoSPHERE, App. A.1, Eqs. 9-10].

Two learning rates [cryoSPHERE, App. B.3]: the loop's single Adam runs at ``lr``; the mixture's
parameters are stored divided by ``lr_segments / lr`` and multiplied back when used, which gives
them Adam steps of ``lr_segments`` (Adam's steps do not depend on the gradient's scale).

Volumes. ``decode_volume`` renders the moved model with ``simulate.render_volume`` at the scale of
``reconstruct.py``: the correlation loss ignores the images' scale, so a gain (least squares of the
data against the prediction, a running mean over training batches) is kept and applied.
"""
import os

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..geometry.ctf import ctf_2d
from ..geometry.fourier import fft2_center, ifft2_center, radial_index, shift_images, soft_circular_window
from ..geometry.so3 import quaternion_multiply_torch, quaternion_rotate_torch
from ..simulate import project_atoms, render_volume
from ..configs import CryoSPHEREConfig
from .base import Encoding, Method
from .cryodrgn import ResidualMLP
from .posterior import posterior_mean, sample_generator


class CryoSPHERE(Method):
    """cryoSPHERE: an atomic model cut into learned segments that move as rigid bodies."""
    name = "cryosphere"
    Config = CryoSPHEREConfig
    uses = ("atomic_model",)
    requires = ("atomic_model",)

    def __init__(self, config, data_info, inputs=None):
        super().__init__(config, data_info, inputs)
        if config.zdim < 0 or config.segments < 1:
            raise ValueError("cryosphere needs zdim >= 0 and segments >= 1")
        if "atomic_model" not in self.inputs:
            raise ValueError("cryosphere needs an atomic model (--structure)")
        am = self.inputs["atomic_model"]
        coords = torch.as_tensor(am["coords"], dtype=torch.float64)
        self.centre_A = float(am["box_A"]) / 2
        centroid = coords.mean(0)
        if ((centroid < 0) | (centroid > 2 * self.centre_A)).any():
            raise ValueError(
                "the atomic model's centre (%.1f, %.1f, %.1f) Å lies outside the particles' box "
                "(0 to %.1f Å): fit the model into the consensus map (voxel 0 at the origin) first"
                % (*centroid.tolist(), 2 * self.centre_A))
        d, k, n_res = data_info.box, config.segments, len(coords)
        self.register_buffer("base", (coords - self.centre_A).float(), persistent=False)  # Å, centred
        self.register_buffer("amp", torch.as_tensor(am["electrons"], dtype=torch.float32), persistent=False)
        self.register_buffer("res_index", torch.arange(n_res, dtype=torch.float32), persistent=False)
        self.sigma_A = max(config.sigma, data_info.apix)
        self.register_buffer("window", soft_circular_window(d) if data_info.window else torch.ones(d, d),
                             persistent=False)
        self.register_buffer("circle", (radial_index(d, 2) < d // 2).reshape(-1), persistent=False)
        # Chain ids; a checkpoint without them holds one chain.
        chains = list(am.get("chains") or [""] * n_res)
        if len(chains) != n_res:
            raise ValueError("the atomic model has %d residues and %d chain ids" % (n_res, len(chains)))
        same_chain = torch.tensor([a == b for a, b in zip(chains[:-1], chains[1:])], dtype=torch.bool)
        # Consecutive residues of a chain (same chain id, numbers differ by 1, < 4.5 Å apart in the
        # input model).
        numbers = torch.as_tensor(am["numbers"])
        gap = (self.base[1:] - self.base[:-1]).norm(dim=-1)
        self.register_buffer("cont_pairs", torch.nonzero((numbers[1:] - numbers[:-1] == 1) & (gap < 4.5)
                                                         & same_chain)[:, 0], persistent=False)
        self.register_buffer("cont_d0", gap[self.cont_pairs], persistent=False)
        # Parts of the residue axis (chains) and the segments each holds; W is 0 outside a
        # segment's part.
        self.parts = segment_parts(chains, k)
        res_part = torch.repeat_interleave(torch.arange(len(self.parts)),
                                           torch.tensor([e - b for b, e, _ in self.parts]))
        seg_part = torch.repeat_interleave(torch.arange(len(self.parts)),
                                           torch.tensor([c for _, _, c in self.parts]))
        self.register_buffer("outside_part", None if len(self.parts) == 1 else
                             res_part[:, None] != seg_part[None, :], persistent=False)   # (R, K)
        # Mixture: variational posterior (mean, raw std) of mu, sigma (pre ELU + 1) and the logits,
        # initialised at the "uniform" prior (the authors' published code) of each part; stored
        # divided by lr_segments / lr.
        mu0, sigma0 = [], []
        for begin, end, count in self.parts:
            bound = (end - begin) / count
            mu0.append(begin + bound / 2 + bound * torch.arange(count, dtype=torch.float32))
            sigma0.append(torch.full((count,), bound))
        prior_mean = torch.stack([torch.cat(mu0), torch.cat(sigma0), torch.zeros(k)])
        prior_std = torch.tensor([10.0, 10.0, 1.0])[:, None].expand(3, k).clone()
        self.register_buffer("prior_mean", prior_mean, persistent=False)
        self.register_buffer("prior_std", prior_std, persistent=False)
        self.seg_scale = config.lr_segments / config.lr
        self.seg_mean = nn.Parameter(prior_mean / self.seg_scale)
        self.seg_std = nn.Parameter(_inv_elu1(prior_std) / self.seg_scale)
        n_pix = int(self.circle.sum())
        if config.zdim > 0:
            self.encoder = ResidualMLP(n_pix, config.enc_dim, config.enc_layers, 2 * config.zdim)
            self.decoder = ResidualMLP(config.zdim, config.dec_dim, config.dec_layers, 6 * k)
            with torch.no_grad():   # start near the identity (a zero output is no motion)
                self.decoder.last.weight.mul_(0.01)
                self.decoder.last.bias.zero_()
        else:
            self.encoder = self.decoder = None
            self.transform = nn.Parameter(torch.zeros(6 * k))
        self.register_buffer("gain", torch.ones(()))       # data ~ gain * prediction
        self.register_buffer("gain_seen", torch.zeros(()))

    # -- segmentation ----------------------------------------------------------------------------
    def _kl_weights(self):
        e = max(self.epoch - 1, 0)
        warm = min(e / self.config.kl_warmup, 1.0) if self.config.kl_warmup > 0 else 1.0
        cyc = self.config.kl_cycle
        pi = min((e % cyc) / (0.5 * cyc), 1.0) if cyc > 0 else 1.0
        return warm, pi

    def segmentation(self, n=None):
        """Soft segmentation W (n, R, K): n samples of the mixture's posterior, or (1, R, K) at the
        posterior means when n is None; 0 outside each segment's part (chain)."""
        mean, std = self.seg_mean * self.seg_scale, F.elu(self.seg_std * self.seg_scale) + 1
        p = mean[None] if n is None else mean + std * torch.randn((n,) + mean.shape, device=mean.device)
        # sigma floored: elu(x) + 1 is exactly 0 in float32 for x < -17 (a sample 2-3 prior
        # standard deviations below the mean on a small model), which made the loss NaN.
        mu, sig, logit = p[:, 0], (F.elu(p[:, 1]) + 1).clamp_min(1e-2), p[:, 2]
        i = self.res_index[None, :, None]
        logits = torch.log_softmax(logit, -1)[:, None, :] - 0.5 * (i - mu[:, None]) ** 2 / sig[:, None] ** 2
        if self.outside_part is not None:
            logits = logits.masked_fill(self.outside_part, float("-inf"))
        return torch.softmax(logits / self.config.tau, dim=-1)

    def _kl_segments(self):
        """KL of the mixture's posterior to its prior, per parameter kind (mu, sigma, logits)."""
        mean, std = self.seg_mean * self.seg_scale, F.elu(self.seg_std * self.seg_scale) + 1
        m0, s0 = self.prior_mean, self.prior_std
        kl = torch.log(s0 / (std + 1e-10)) + (std ** 2 + (mean - m0) ** 2) / (2 * s0 ** 2) - 0.5
        return kl.sum(-1)

    def segments(self):
        """(R,) hard segment labels (argmax of W at the posterior means): a segment's residues lie
        in one chain, or are whole chains (see the module's "Chains")."""
        with torch.no_grad():
            return self.segmentation()[0].argmax(-1).cpu()

    # -- deformation -----------------------------------------------------------------------------
    def _transforms(self, z):
        """(B, K, 3) translations (Å) and (B, K, 3) quaternion vector parts for latents (B, zdim)."""
        out = (self.decoder(z) if self.decoder is not None
               else self.transform.expand(len(z), -1)).float()
        out = out.reshape(len(z), self.config.segments, 6)
        return out[..., :3], out[..., 3:]

    def _deform(self, z, w):
        """Moved residues (B, R, 3), Å from the box centre, for latents z and segmentations w
        (B or 1, R, K)."""
        t, v = self._transforms(z)
        n = torch.sqrt((v ** 2).sum(-1, keepdim=True) + 1e-12)          # |v_k|
        half = w[..., None] * torch.atan(n)[:, None]                    # (B, R, K, 1): W_ik theta_k / 2
        q = torch.cat([torch.cos(half), torch.sin(half) * (v / n)[:, None]], dim=-1)  # (B, R, K, 4)
        total = q[..., 0, :]
        for k in range(1, q.shape[-2]):
            total = quaternion_multiply_torch(q[..., k, :], total)      # segment k applied after k-1
        moved = quaternion_rotate_torch(total, self.base)
        return moved + torch.einsum("brk,bkc->brc", w.expand(len(z), -1, -1), t)

    def _posterior(self, images, shifts_px):
        x = shift_images(images.float(), shifts_px).flatten(1)[:, self.circle]
        out = self.encoder(x).float()
        return out[:, :self.zdim], F.elu(out[:, self.zdim:]) + 1

    def _render(self, coords_A, batch):
        """Predicted (B, D, D) images of residues at coords_A (B, R, 3), posed, shifted, CTF."""
        apix, d = self.data_info.apix, self.data_info.box
        img = project_atoms(coords_A / apix, self.amp, self.sigma_A / apix, batch["rotations"],
                            batch["shifts_px"], d, dtype=torch.float32)
        if "ctf" in batch:
            img = ifft2_center(fft2_center(img) * ctf_2d(d, apix, batch["ctf"], device=img.device)).real
        return img * self.window

    # -- contract --------------------------------------------------------------------------------
    def training_step(self, batch):
        images = batch["images"].float()
        b = len(images)
        n_pix = images.shape[-1] * images.shape[-2]
        if self.zdim > 0:
            mu, std = self._posterior(images, batch["shifts_px"])
            z = mu + std * torch.randn_like(mu)
            kl_z = (-0.5 * (1 + 2 * torch.log(std + 1e-10) - mu ** 2 - std ** 2).sum(1)).mean()
        else:
            z, kl_z = images.new_zeros(b, 0), images.new_zeros(())
        with torch.autocast(images.device.type, enabled=False):
            moved = self._deform(z.float(), self.segmentation(b))
            pred = self._render(moved, batch)
            dot = (pred * images).sum((-2, -1))
            corr = -(dot / ((images.std((-2, -1)) + 1e-5) * (pred.std((-2, -1)) + 1e-5)) / n_pix).mean()
            kl_mu, kl_sigma, kl_pi = self._kl_segments()
            warm, beta_pi = self._kl_weights()
            loss = corr + (warm * (kl_z + kl_mu + kl_sigma) + beta_pi * kl_pi) / n_pix
            if self.encoder is not None and self.config.l2 > 0:
                loss = loss + self.config.l2 * sum((p ** 2).sum() for m in (self.encoder, self.decoder)
                                                   for name, p in m.named_parameters() if "weight" in name)
            out = {}
            if self.config.continuity_weight > 0 and len(self.cont_pairs):
                cont = self.continuity_loss(moved)
                loss = loss + self.config.continuity_weight * cont
                out["continuity"] = float(cont.detach())
            if self.config.clash_weight > 0:
                clash = self.clash_loss(moved)
                loss = loss + self.config.clash_weight * clash
                out["clash"] = float(clash.detach())
        if self.training:
            with torch.no_grad():   # running least-squares gain of the data against the prediction
                g = float((pred * images).sum() / (pred ** 2).sum().clamp_min(1e-20))
                self.gain.copy_(g if self.gain_seen == 0 else 0.98 * self.gain + 0.02 * g)
                self.gain_seen += 1
        return dict({"loss": loss, "corr": float(-corr.detach()), "kl_z": float(kl_z.detach()),
                     "kl_segments": float((kl_mu + kl_sigma + kl_pi).detach())}, **out)

    def continuity_loss(self, moved):
        """Mean squared change of consecutive C-alpha distances [cryoSPHERE, App. A.1, Eq. 9]."""
        i = self.cont_pairs
        d = (moved[:, i + 1] - moved[:, i]).norm(dim=-1)
        return ((d - self.cont_d0) ** 2).mean()

    def clash_loss(self, moved):
        """[cryoSPHERE, App. A.1, Eq. 10]: mean over clashing pairs (|i - j| >= 2, closer than the
        cutoff) of (cutoff - d)^2, per image, averaged over images."""
        r = moved.shape[1]
        i, j = torch.triu_indices(r, r, offset=2, device=moved.device)
        if self.config.clash_pairs_max is not None:
            keep = (self.base[i] - self.base[j]).norm(dim=-1) < self.config.clash_pairs_max
            i, j = i[keep], j[keep]
        d = (moved[:, i] - moved[:, j]).norm(dim=-1)
        pen = torch.relu(self.config.clash_cutoff - d)
        count = (pen > 0).sum(-1).clamp_min(1)
        return ((pen ** 2).sum(-1) / count).mean()

    @torch.no_grad()
    def encode(self, batch):
        images = batch["images"]
        if self.zdim == 0:
            return Encoding(z=images.new_zeros(len(images), 0).float())
        mu, std = self._posterior(images, batch["shifts_px"])
        if self.config.z_samples > 0:
            mu = self._posterior_mean(batch, mu, std, sample_generator(batch, mu.device))
        return Encoding(z=mu)

    def _posterior_mean(self, batch, mu, std, gen):
        """E[z | image] (``posterior.posterior_mean``); the likelihood compares the windowed image
        with a times the rendered prediction (a fitted per sample)."""
        s = self.config.z_samples
        y = (batch["images"].float() * self.window).flatten(1)                 # (b, P)

        def residuals(zs, rows):
            rep = {k: batch[k][rows].repeat_interleave(s + 1, 0)
                   for k in ("rotations", "shifts_px", "ctf") if k in batch}
            pred = self._render(self._deform(zs.reshape(-1, self.zdim), self.segmentation()),
                                rep).reshape(len(zs), s + 1, -1)
            yr = y[rows]
            a = ((pred * yr[:, None]).sum(-1) / (pred ** 2).sum(-1).clamp_min(1e-20)).clamp_min(0)
            return ((yr[:, None] - a[..., None] * pred) ** 2).sum(-1), self.window.pow(2).sum()
        return posterior_mean(mu, std, residuals, s, self.config.z_widen, gen)

    @torch.no_grad()
    def _structure_A(self, z):
        z = torch.as_tensor(z, dtype=torch.float32, device=self.base.device)
        single = z.ndim < 2
        z = z.reshape(1 if single else len(z), self.zdim)
        moved = self._deform(z, self.segmentation())
        return moved[0] if single else moved

    @torch.no_grad()
    def segment_motions(self, z, chunk=4096):
        """Each segment's rigid motion at latent points z (N, zdim): rotation angles (N, K) in
        degrees, rotation axes (N, K, 3) and translations (N, K, 3) in Å."""
        z = torch.as_tensor(z, dtype=torch.float32, device=self.base.device).reshape(-1, self.zdim)
        parts = [self._transforms(c) for c in z.split(chunk)] if len(z) else []
        t = torch.cat([p[0] for p in parts]) if parts else torch.zeros(0, self.config.segments, 3)
        v = torch.cat([p[1] for p in parts]) if parts else torch.zeros(0, self.config.segments, 3)
        n = v.norm(dim=-1)
        angle = torch.rad2deg(2 * torch.atan(n))
        axis = v / n.clamp_min(1e-12)[..., None]
        return angle.cpu().numpy(), axis.cpu().numpy(), t.cpu().numpy()

    def write_results(self, out, z):
        """``segments.txt`` (residue number and segment, 1-based, of every C-alpha of the model) and
        ``segment_motions.npz`` (per particle and segment: angle_deg, axis, translation_A)."""
        from ..io.mrc import save_npz, save_txt
        numbers = self.inputs["atomic_model"]["numbers"].cpu().numpy()
        save_txt(os.path.join(out, "segments.txt"),
                 np.column_stack([numbers, self.segments().numpy() + 1]), fmt="%d",
                 header="residue_number segment")
        angle, axis, translation = self.segment_motions(z)
        save_npz(os.path.join(out, "segment_motions.npz"), angle_deg=angle, axis=axis,
                 translation_A=translation)

    def decode_structure(self, z):
        """C-alpha coordinates (R, 3) in Å in the atomic model's own frame for a latent point z
        (zdim,) ((N, R, 3) for (N, zdim)), with the segmentation at its posterior means."""
        return (self._structure_A(z) + self.centre_A).cpu()

    @torch.no_grad()
    def decode_volume(self, z, box=None):
        d0, d = self.data_info.box, self.decode_box(box)
        voxel = self.data_info.apix * d0 / d
        coords = self._structure_A(torch.as_tensor(z).reshape(self.zdim))
        # Peak values such that a projection (sum of voxels along z) matches the data's pixels.
        weights = self.amp * float(self.gain) * self.data_info.scale * voxel / self.data_info.apix
        return render_volume(coords / voxel, weights, self.sigma_A / voxel, d).to(self.base.device)


def segment_parts(chains, k):
    """The parts of the residue axis the K segments are shared among: ``[(begin, end, segments)]``
    covering residues 0..R-1 in order, with ``segments`` summing to ``k``.

    A part is a chain (a run of residues with one chain id). While there are more parts than
    segments, the two adjacent parts with the fewest residues together (the first such pair) are
    merged; a merged part gets one segment. The remaining segments go, one at a time, to the
    single-chain part with the most residues per segment (the first one on a tie)."""
    n = len(chains)
    begins = [0] + [i for i in range(1, n) if chains[i] != chains[i - 1]]
    parts = [[b, e, 1] for b, e in zip(begins, begins[1:] + [n])]      # begin, end, chains
    while len(parts) > k:
        j = min(range(len(parts) - 1), key=lambda j: parts[j + 1][1] - parts[j][0])
        parts[j:j + 2] = [[parts[j][0], parts[j + 1][1], parts[j][2] + parts[j + 1][2]]]
    counts = [1] * len(parts)
    single = [p for p in range(len(parts)) if parts[p][2] == 1]
    for _ in range(k - len(parts)):
        p = max(single, key=lambda p: (parts[p][1] - parts[p][0]) / counts[p])
        counts[p] += 1
    return [(b, e, c) for (b, e, _), c in zip(parts, counts)]


def _inv_elu1(s):
    """x with ELU(x) + 1 = s (s > 0)."""
    return torch.where(s >= 1, s - 1, torch.log(s.clamp_min(1e-12)))
