"""HetSIREN (Herreros et al., Nat Commun 2025, "Real-space heterogeneous reconstruction,
refinement, and disentanglement of CryoEM conformational states with HetSIREN"): a deterministic
autoencoder that decodes maps in real space, written from the paper (cited by section and
equation, [HetSIREN, ...], see docs/references.md) and, where it is silent, the authors'
published code; what comes from neither is marked "our choice".

Volume. The map of particle n is ``V_n = V_0 + m * dV(z_n)`` [HetSIREN, Eqs. 2, 11] on a set of
voxels: the sphere inscribed in the box, plus the voxels of the mask when one is given. ``V_0`` is
the reference map when one is given (fixed), else a learned consensus (one parameter per voxel)
that starts as a direct Fourier reconstruction of the particles with their given poses (our choice,
``init_consensus``; see the Config). ``dV`` is decoded only on the mask's voxels (mask > 0; the
whole sphere without a mask) and weighted by the (soft) mask ``m``, so outside the mask the map
*is* ``V_0``.

Decoder [HetSIREN, Methods "HetSIREN network architecture"; Supp. Fig. 3]. Not a coordinate
network: z goes through meta-sinusoidal layers and a final linear layer with one output per decoded
voxel. A meta-sine layer is ``y = sin(omega * (W(x) x + b(x)))`` whose weights ``[W(x) | b(x)]``
are generated from its own input by a ReLU hypernetwork. The first layer maps z to ``dec_dim``
features with frequency ``omega0`` (1 by default; the published code uses 30, which makes the map a
rugged function of z: see the Config); ``dec_layers`` residual layers ``h <- h + MetaSine(h)``
follow with omega = 1. The hypernetworks' last layers start with a SIREN initialisation of the
generated weights as their bias (uniform 1/n_in for the first layer, sqrt(6/n_in)/omega after,
[SIREN]) and small weights, so the decoder starts as an ordinary SIREN that the hypernetworks then
modulate (our choice; in the authors' published code the hypernetworks' own initialisation governs
the generated weights).

Image model [HetSIREN, Eq. 1]. The voxel centres r (pixels from the centre) are rotated, p =
(A r)_xy - shift (the particle sits at -origin, RELION's convention), and each voxel's value is
splatted bilinearly onto the image (``geometry.projection.splat_bilinear``): a line integral
along z. The projection is zero-padded ``ctf_pad``-fold, multiplied in Fourier space by the CTF (our
RELION formula, protein bright) and by an optional Gaussian blur, cropped back and multiplied by
the same soft circular window as the data. With a reference map and ``ref_envelope`` the
Fourier filter also holds the reference's radial envelope, fitted to the data once at the start
(``_fit_envelope``), so a reference filtered or scaled otherwise than the images projects as
the data. Voxel values are in units of the scale-normalised
images (``decode_volume`` multiplies by ``data_info.scale``), so a map projects to the images as
``reconstruct.py``'s maps do.

Encoder [HetSIREN, Methods "HetSIREN network architecture"; Supp. Fig. 5]. Default: the paper's
MLP, ``mlp_layers`` dense layers of ``mlp_dim`` on the flattened image; option ``conv`` (the
paper's default): a small residual CNN on the image resized to ``enc_box`` (conv 5x5/2 x 4,
5x5/2 x 8, residual 1x1 units, 3x3/2 x 16, residual units, 3x3/2 x 16, then ``enc_layers`` dense
layers of ``enc_dim``), which learned the states far more slowly in our measurements (Config). The
z head (``head_layers`` dense layers and a final linear "latent layer", shared with the
decoupling encoders) gives z.

Pose refinement [HetSIREN, Discussion; Supp. Fig. 4], with ``refine_poses``. Refined pose:
``A' = R(delta) A`` (delta a rotation vector), shift' = shift + delta_shift, within
``max_delta_deg`` / ``max_delta_px``. By default the corrections come from a local Gauss-Newton
fit of each particle's pose to its decoded map when the particles are encoded (``pose_search``
steps): the image is fitted by ``a (p + J delta)``, p the (CTF-filtered) projection at the
current pose, J the derivatives of that projection with respect to a small rotation and shift
(from two splats and Fourier derivatives) and a a free scale, with a Gaussian prior around the
input pose (``pose_sigma_deg`` / ``pose_sigma_px``), i.e. a MAP estimate: at low SNR the
likelihood alone is too flat. Option ``pose_heads``, the paper's form: two more encoder heads
give the corrections (tanh-bounded), reading a second encoder of the same architecture whose two
input channels are the image and the model's current projection at the input pose (detached),
plus the input pose itself (our choice; the paper branches them from the z encoder: an image
alone cannot tell how wrong a given pose is). Their last layers start at zero, they are held at
zero for ``pose_warmup`` epochs while the map forms and pulled toward zero by ``pose_reg``; the
Gauss-Newton refinement then starts from their output. ``pose_search_train`` > 0 also refines
the poses in training after the warm-up (that many steps per epoch, continuing from the
particle's previous correction), so the map learns from the refined poses. Measured numbers in
the Config comments.

Decoupling [HetSIREN, Eqs. 3-4; Supp. Fig. 6]. With ``decouple``, each step also projects the
decoded maps at the batch's poses shuffled (clean, no CTF) and applies the shuffled CTFs to the
projections at the particles' own poses. A pose-decoupling encoder reads the clean projections at
the own and shuffled poses, a CTF-decoupling encoder the projections with the own and shuffled CTFs
(both copies of the experimental encoder sharing its latent layer) and the losses
``lambda_pose (|z - z_t|^2 + |z - z_pt|^2)`` and ``lambda_ctf (|z - z_c|^2 + |z - z_pc|^2)``
(means over latent dimensions, as the authors' published code) pull them onto z.

Loss [HetSIREN, Eqs. 5-12]. MSE (or 1 - correlation) between the predicted and experimental images,
at full resolution and, with ``multires``, again after Fourier cropping both to half the box (the
paper's "R and 2R" scheme; for the first ``multires_until`` of the run's epochs, coarse to fine),
plus on the decoded full-resolution maps: ``l1`` mean |V|, ``neg`` mean |min(V, 0)|, ``tv`` mean
|finite differences|, ``l2grad`` mean squared finite differences (means, as the authors' published
code, so the weights do not depend on the box), ``delta_l2`` times the
mean square of the decoded change dV in units of its projections (voxel value x box; a Gaussian
prior on the change, our choice: without it the change also fits the images' noise), and with a
mask ``focus`` times the squared differences of the max, min, mean and standard deviation of the
map inside the mask (mask >= 0.5) and of the reference (or, without one, of the detached consensus)
[HetSIREN, Eq. 12].

Latent gauge (our choice; ``hetsiren_gauge.py``). z has no prior, so its scale and orientation are
arbitrary; at the end of training z is re-expressed linearly so that equal steps change the decoded
map equally, along its principal axes. The maps are unchanged; the principal components of z then
follow the decoded change rather than directions the decoder barely uses.

Numerics. Under autocast only the encoders run in the low precision; the decoder's voxel layer,
the projector, the CTF and the losses run in float32.
"""
import math
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..errors import InputError
from ..geometry.ctf import ctf_2d
from ..geometry.fourier import (fft2_center, fourier_crop, fourier_crop_3d, freq_grid_2d,
                                freqs_1d, ifft2_center, soft_circular_window)
from ..geometry.projection import splat_bilinear
from ..geometry.so3 import axis_angle_to_matrix_torch
from ..io.mrc import ImageSource
from ..configs import HetSIRENConfig
from ..reconstruct import reconstruct
from .base import Encoding, Method
from .hetsiren_layers import MetaSine, Trunk, _dense
from .hetsiren_envelope import ReferenceEnvelope
from .hetsiren_gauge import LatentGauge
from .hetsiren_pose import LocalPoseRefinement


# -- the method --------------------------------------------------------------------------------
class HetSIREN(LatentGauge, ReferenceEnvelope, LocalPoseRefinement, Method):
    """HetSIREN: real-space decoding with a sinusoidal hypernetwork, masks, pose refinement."""
    name = "hetsiren"
    Config = HetSIRENConfig
    uses = ("mask", "reference")

    def __init__(self, config, data_info, inputs=None):
        super().__init__(config, data_info, inputs)
        cfg, d = config, data_info.box
        if cfg.loss not in ("mse", "corr"):
            raise ValueError("--loss must be mse or corr (got %r)" % cfg.loss)
        if cfg.zdim < 0 or cfg.ctf_pad < 1 or cfg.blur_sigma < 0:
            raise ValueError("zdim >= 0, ctf_pad >= 1 and blur_sigma >= 0 are required")
        self.width = cfg.dec_dim if cfg.dec_dim else max(cfg.zdim, 8)
        if self.width < 1:
            raise ValueError("--dec-dim must be positive")
        mask = self.inputs.get("mask")
        ref = self.inputs.get("reference")
        for key, t in (("mask", mask), ("reference", ref)):
            if t is not None and tuple(t.shape) != (d, d, d):
                raise ValueError("the %s is %s, the training box is %d^3" % (key, tuple(t.shape), d))

        # Voxel set S: the inscribed sphere plus the mask's voxels (flattened z, y, x indices).
        f = freqs_1d(d) * d
        zz, yy, xx = torch.meshgrid(f, f, f, indexing="ij")
        inside = (xx ** 2 + yy ** 2 + zz ** 2 < (d / 2) ** 2).reshape(-1)
        m = mask.reshape(-1).float().clamp(0, 1) if mask is not None else None
        if m is not None:
            inside = inside | (m > 0)
        idx = torch.nonzero(inside)[:, 0]
        coords = torch.stack([xx.reshape(-1), yy.reshape(-1), zz.reshape(-1)], dim=-1)[idx]
        self.register_buffer("vox_idx", idx, persistent=False)            # (M,) into D^3
        self.register_buffer("vox_xyz", coords.float(), persistent=False)  # (M, 3) px
        # Decoded voxels (positions in S) and their mask weights.
        if m is not None:
            ms = m[idx]
            dec = torch.nonzero(ms > 0)[:, 0]
            self.register_buffer("dec_pos", dec, persistent=False)
            self.register_buffer("dec_w", ms[dec], persistent=False)
            self.register_buffer("focus_pos", torch.nonzero(ms >= 0.5)[:, 0], persistent=False)
        else:
            dec = torch.arange(len(idx))
            self.register_buffer("dec_pos", dec, persistent=False)
            self.register_buffer("dec_w", torch.ones(len(idx)), persistent=False)
            self.focus_pos = None
        n_dec = len(dec)
        # Base map V_0 in image units: the reference (fixed) or a learned consensus.
        if ref is not None:
            self.register_buffer("ref_vals", ref.reshape(-1).float()[idx] / data_info.scale,
                                 persistent=False)
            # The whole reference, for the voxels outside S in decoded maps.
            self.register_buffer("ref_full", ref.reshape(-1).float() / data_info.scale,
                                 persistent=False)
            self.consensus = None
        else:
            self.ref_vals = self.ref_full = None
            self.consensus = nn.Parameter(torch.zeros(len(idx)))
        if self.focus_pos is not None and len(self.focus_pos) < 2:
            self.focus_pos = None

        # Decoder: meta-sine layers and one linear output per decoded voxel.
        w = self.width
        if cfg.zdim > 0:
            self.meta = nn.ModuleList(
                [MetaSine(cfg.zdim, w, w, cfg.hyper_layers, cfg.omega0, first=True)]
                + [MetaSine(w, w, w, cfg.hyper_layers, 1.0, first=False)
                   for _ in range(cfg.dec_layers)])
            self.vox_weight = nn.Parameter(torch.empty(n_dec, w))
            with torch.no_grad():
                if ref is not None:
                    # the authors' published code starts at U(0.1 min V_0, 0.1 max V_0); a
                    # zero-mean version of that spread, divided by the width, starts the maps
                    # close to the reference.
                    a = 0.1 * float(self.ref_vals.abs().max()) / w
                else:
                    a = math.sqrt(6.0 / (n_dec + w))        # Glorot uniform (the authors' published code)
                self.vox_weight.uniform_(-a * cfg.vox_init, a * cfg.vox_init)
        else:
            self.meta, self.vox_weight = None, None
        # A z-independent change of the reference (the consensus already is one without it).
        self.vox_bias = nn.Parameter(torch.zeros(n_dec)) if ref is not None else None

        # Encoders.
        if cfg.zdim > 0:
            self.trunk = Trunk(cfg, d)
            self.z_head, n = _dense(self.trunk.n_out, cfg.enc_dim, cfg.head_layers)
            self.latent = nn.Linear(n, cfg.zdim)          # shared "conformational latent layer"
        if cfg.refine_poses and cfg.pose_heads:
            # The pose heads read the image and the model's projection at the input pose (two
            # channels) and the input pose itself.
            self.pose_enc = Trunk(cfg, d, channels=2)
            n_in = self.pose_enc.n_out + 8
            self.rot_head, n = _dense(n_in, cfg.enc_dim, cfg.head_layers)
            self.rot_out = nn.Linear(n, 3)
            self.shift_head, n = _dense(n_in, cfg.enc_dim, cfg.head_layers)
            self.shift_out = nn.Linear(n, 2)
            for lin in (self.rot_out, self.shift_out):
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)
        if cfg.decouple and cfg.zdim > 0:
            self.pose_trunk = Trunk(cfg, d)
            self.pose_z_head, _ = _dense(self.pose_trunk.n_out, cfg.enc_dim, cfg.head_layers)
            self.ctf_trunk = Trunk(cfg, d)
            self.ctf_z_head, _ = _dense(self.ctf_trunk.n_out, cfg.enc_dim, cfg.head_layers)

        self._pose_mem = None          # per-particle corrections of the local refinement
        self._init_gauge(cfg.zdim)     # the user's z from the encoder's (``settle``)
        win = soft_circular_window(d) if data_info.window else torch.ones(d, d)
        self.register_buffer("window", win, persistent=False)
        p = cfg.ctf_pad * d
        # Radial envelope of the projections of a reference (padded grid; see ``initialise``).
        self.register_buffer("envelope", torch.ones(p, p) if ref is not None and cfg.ref_envelope
                             else None)
        k2 = (freq_grid_2d(p) ** 2).sum(-1)
        self.register_buffer("blur", torch.exp(-2 * math.pi ** 2 * cfg.blur_sigma ** 2 * k2),
                             persistent=False)
        # Fourier derivative factors 2 pi i k (x, y) on the padded grid, zero at Nyquist.
        kg = freq_grid_2d(p)
        kg = torch.where(kg.abs() >= 0.5, torch.zeros_like(kg), kg)
        self.register_buffer("dgrid", 2j * math.pi * kg.to(torch.complex64), persistent=False)

    def initialise(self, dataset, rows, epochs, log=print):
        """The learned consensus starts as a direct Fourier reconstruction (``reconstruct.py``,
        Wiener-filtered, at most ``init_particles`` particles) of the training particles with their
        given poses, so that the residuals the encoder and the decoder first see are the
        heterogeneity rather than a consensus still being formed."""
        cfg = self.config
        if self.envelope is not None:
            self._fit_envelope(dataset, np.asarray(rows), log)
        if self.consensus is None or not cfg.init_consensus:
            return
        rows = np.asarray(rows)
        if len(rows) > cfg.init_particles:
            rows = np.sort(np.random.default_rng(0).choice(rows, cfg.init_particles, replace=False))
        table = dataset.table.subset(rows)
        log("train: consensus start: reconstruction of %d particles with their poses" % len(table))
        r = reconstruct(table, ImageSource(table), box=dataset.box, invert=dataset.invert,
                        window=0.85 if dataset.window is not None else None, log=lambda *a: None)
        if not np.isfinite(r["map"]).all():
            for i in range(0, len(rows), 256):      # the dataset's own check names the bad image
                dataset.images(rows[i:i + 256])
            raise InputError(dataset.table.source or "particles", "the reconstruction with the given "
                             "poses and CTFs is not finite: run 'flexplugin check' on the particle "
                             "file (or train with --no-init-consensus)")
        vol = torch.as_tensor(r["map"], dtype=torch.float32).reshape(-1)
        with torch.no_grad():
            self.consensus.copy_(vol.to(self.consensus.device)[self.vox_idx.to(self.consensus.device)]
                                 / self.data_info.scale)

    # -- volume --------------------------------------------------------------------------------
    def _base(self):
        return self.ref_vals if self.ref_vals is not None else self.consensus

    def _delta(self, z):
        """Decoded change on the decoded voxels: (B, n_dec) float32, or None."""
        parts = []
        if self.meta is not None:
            h = self.meta[0](z)
            for layer in self.meta[1:]:
                h = h + layer(h)
            with torch.autocast(z.device.type, enabled=False):
                parts.append(h.float() @ self.vox_weight.t())
        if self.vox_bias is not None:
            parts.append(self.vox_bias.expand(len(z), -1))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    def _volume(self, z):
        """Voxel values on S (B, M), float32, image units."""
        return self._volume_and_change(z)[0]

    def _volume_and_change(self, z):
        """(voxel values on S (B, M), the decoded change dV on the decoded voxels (B, n_dec) or
        None), float32, image units."""
        base = self._base().float().expand(len(z), -1)
        delta = self._delta(z)
        if delta is None:
            return base, None
        change = torch.zeros_like(base).index_copy(1, self.dec_pos, delta * self.dec_w)
        return base + change, delta

    def _grid(self, vals):
        """(B, M) voxel values -> (B, D, D, D) maps."""
        d = self.data_info.box
        out = torch.zeros(len(vals), d ** 3, dtype=vals.dtype, device=vals.device)
        out.index_copy_(1, self.vox_idx, vals)
        return out.reshape(-1, d, d, d)

    # -- image model ---------------------------------------------------------------------------
    def _project(self, vals, rotations, shifts_px):
        """Line integrals (B, D, D) of the voxel values at the poses (particle at -shift)."""
        d = self.data_info.box
        xy = torch.matmul(rotations[:, :2, :].float(), self.vox_xyz.t())     # (B, 2, M)
        c = d // 2 - shifts_px.float()
        return splat_bilinear(xy[:, 0] + c[:, :1], xy[:, 1] + c[:, 1:], vals, d)

    def _filter(self, proj, ctf):
        """CTF (when given), blur and the reference's envelope in Fourier space on the padded
        image, cropped, windowed."""
        d = proj.shape[-1]
        if ctf is None and self.config.blur_sigma == 0 and self.envelope is None:
            return proj * self.window
        p = self.config.ctf_pad * d
        a = p // 2 - d // 2
        x = F.pad(proj, (a, p - d - a, a, p - d - a))
        filt = self.blur if self.envelope is None else self.blur * self.envelope
        if ctf is not None:
            filt = filt * ctf_2d(p, self.data_info.apix, ctf, device=proj.device)
        x = ifft2_center(fft2_center(x) * filt).real
        return x[..., a:a + d, a:a + d] * self.window

    def _cost(self, pred, img):
        if self.config.loss == "mse":
            return ((pred - img) ** 2).mean()
        pc = pred - pred.mean((-2, -1), keepdim=True)
        ic = img - img.mean((-2, -1), keepdim=True)
        num = (pc * ic).sum((-2, -1))
        den = torch.sqrt((pc ** 2).sum((-2, -1)) * (ic ** 2).sum((-2, -1)) + 1e-12)
        return (1 - num / den).mean()

    def _multires_on(self):
        """The half-resolution term: with ``multires``, in training for the first ``multires_until``
        of the run's epochs (and always outside training, e.g. for the evaluation loss)."""
        cfg = self.config
        if not cfg.multires:
            return False
        last = math.ceil(cfg.multires_until * self.epochs)
        return not self.training or not self.epochs or self.epoch <= last

    def _data_loss(self, pred, img):
        loss = self._cost(pred, img)
        if self._multires_on() and img.shape[-1] >= 8:
            d2 = img.shape[-1] // 2
            d2 += d2 % 2
            loss = loss + self._cost(fourier_crop(pred, d2), fourier_crop(img, d2))
        return loss

    # -- encoders ------------------------------------------------------------------------------
    def _encode(self, batch):
        """(z, rotations, shifts_px, voxel values, decoded change, penalty on the heads' corrections)
        with the refined pose when refine_poses."""
        cfg = self.config
        img = batch["images"]
        rot, shifts = batch["rotations"].float(), batch["shifts_px"].float()
        n = len(img)
        z = self._latent(img, batch) if self.zdim > 0 else torch.zeros(n, 0, device=img.device)
        with torch.autocast(img.device.type, enabled=False):
            vals, delta = self._volume_and_change(z)
        pen = None
        # Corrections are held at zero during the warm-up epochs of training (never in encode).
        active = cfg.refine_poses and (not self.training or self.epoch > cfg.pose_warmup)
        if active and cfg.pose_heads:
            d = self.data_info.box
            with torch.no_grad(), torch.autocast(img.device.type, enabled=False):
                guide = self._filter(self._project(vals.detach(), rot, shifts), batch.get("ctf"))
            feats = self.pose_enc(torch.stack([img, guide.to(img.dtype)], dim=1))
            pose = torch.cat([rot[:, :2, :].reshape(n, 6), shifts / d], dim=1).to(feats.dtype)
            x = torch.cat([feats, pose], dim=1)
            dr = self.rot_out(self.rot_head(x)).float()
            ds = self.shift_out(self.shift_head(x)).float()
            dr = torch.tanh(dr / cfg.max_delta_deg) * cfg.max_delta_deg
            ds = torch.tanh(ds / cfg.max_delta_px) * cfg.max_delta_px
            pen = (dr ** 2).sum(-1).mean() + (ds ** 2).sum(-1).mean()
            with torch.autocast(img.device.type, enabled=False):    # float32 poses
                rot = axis_angle_to_matrix_torch(dr * (math.pi / 180)) @ rot
            shifts = shifts + ds
        steps = cfg.pose_search_train if self.training else cfg.pose_search
        if active and steps > 0:
            # Start from the particle's correction of the previous epoch when this process has
            # it (kept in memory only, not in the checkpoint).
            idx = batch.get("index")
            w0 = s0 = None
            if idx is not None and self._pose_mem is not None and int(idx.max()) < len(self._pose_mem):
                mem = self._pose_mem[idx.long()].to(img.device)
                s0, w0 = mem[:, :2], mem[:, 2:]
            with torch.no_grad(), torch.autocast(img.device.type, enabled=False):
                dw, ds = self._refine_local(img.float(), vals.detach(), rot.detach(),
                                            shifts.detach(), batch.get("ctf"), steps, w0, s0)
                if self.training and idx is not None:
                    self._remember(idx, torch.cat([ds, dw], 1))
            with torch.autocast(img.device.type, enabled=False):
                rot = axis_angle_to_matrix_torch(dw) @ rot
            shifts = shifts + ds
        return z, rot, shifts, vals, delta, pen

    def _latent(self, img, batch):
        """The encoder's z (B, zdim) for a batch, float32."""
        return self.latent(self.z_head(self.trunk(img))).float()

    def training_step(self, batch):
        cfg = self.config
        img = batch["images"].float()
        ctf = batch.get("ctf")
        z, rot, shifts, vals, delta, pen = self._encode(batch)
        out = {}
        with torch.autocast(img.device.type, enabled=False):
            proj = self._project(vals, rot, shifts)
            pred = self._filter(proj, ctf)
            data = self._data_loss(pred, img)
            loss = data
            out["data"] = float(data.detach())
            grid = None
            if cfg.delta_l2 and delta is not None:
                change = delta * self.data_info.box    # ~ the amplitude of its projections
                loss = loss + cfg.delta_l2 * (change ** 2).mean()
            if cfg.l1:
                l1 = vals.abs().mean()
                loss = loss + cfg.l1 * l1
            if cfg.neg:
                loss = loss + cfg.neg * torch.relu(-vals).mean()
            if cfg.tv or cfg.l2grad:
                grid = self._grid(vals)
                for k in (1, 2, 3):
                    g = grid.diff(dim=k)
                    loss = loss + (cfg.tv * g.abs() + cfg.l2grad * g * g).mean() / 3
            if cfg.focus and self.focus_pos is not None:
                foc = self._focus_loss(vals)
                loss = loss + cfg.focus * foc
                out["focus"] = float(foc.detach())
        if pen is not None and cfg.pose_reg:
            loss = loss + cfg.pose_reg * pen
            out["pose_reg"] = float(pen.detach())
        if cfg.decouple and self.zdim > 0 and len(img) > 1:
            lp, lc = self._decoupling(z, vals, proj, rot, shifts, ctf)
            loss = loss + cfg.lambda_pose * lp + cfg.lambda_ctf * lc
            out["pose_dec"] = float(lp.detach())
            out["ctf_dec"] = float(lc.detach())
        out["loss"] = loss
        return out

    def _focus_loss(self, vals):
        v = vals[:, self.focus_pos]
        r = (self.ref_vals if self.ref_vals is not None else self.consensus.detach())[self.focus_pos]

        def stats(x):
            return torch.stack([x.amax(-1), x.amin(-1), x.mean(-1), x.std(-1)], dim=-1)
        return ((stats(v) - stats(r.float())[None]) ** 2).sum(-1).mean()

    def _decoupling(self, z, vals, proj, rot, shifts, ctf):
        n = len(z)
        perm = torch.roll(torch.randperm(n, device=z.device), 1)   # a shuffle
        with torch.autocast(z.device.type, enabled=False):
            clean = self._filter(proj, None)
            clean_p = self._filter(self._project(vals, rot[perm], shifts[perm]), None)
        zt = self.latent(self.pose_z_head(self.pose_trunk(torch.cat([clean, clean_p])))).float()
        lp = ((z - zt[:n]) ** 2).mean() + ((z - zt[n:]) ** 2).mean()
        if ctf is None:
            return lp, torch.zeros((), device=z.device)
        perm2 = torch.randperm(n, device=z.device)
        with torch.autocast(z.device.type, enabled=False):
            own = self._filter(proj, ctf)
            other = self._filter(proj, ctf[perm2])
        zc = self.latent(self.ctf_z_head(self.ctf_trunk(torch.cat([own, other])))).float()
        lc = ((z - zc[:n]) ** 2).mean() + ((z - zc[n:]) ** 2).mean()
        return lp, lc

    @torch.no_grad()
    def encode(self, batch):
        z, rot, shifts, _, _, _ = self._encode(batch)
        z = self._to_user(z.float())
        if not self.config.refine_poses:
            return Encoding(z=z.float())
        return Encoding(z=z.float(), rotations=rot.float(),
                        shifts_A=shifts.float() * self.data_info.apix)

    @torch.no_grad()
    def decode_volume(self, z, box=None):
        d0, d = self.data_info.box, self.decode_box(box)
        dev = self.vox_xyz.device
        z = torch.as_tensor(z, dtype=torch.float32, device=dev).reshape(1, self.zdim)
        vals = self._volume(self._from_user(z))[0]
        if self.ref_full is not None:      # outside S the map is the reference
            vol = self.ref_full.clone().index_copy_(0, self.vox_idx, vals).reshape(d0, d0, d0)
        else:
            vol = self._grid(vals[None])[0]
        vol = vol * self.data_info.scale
        if d != d0:
            vol = fourier_crop_3d(vol.double(), d).float()
        return vol.float()
