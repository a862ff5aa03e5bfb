"""cryoDRGN (Zhong et al., preprint "CryoDRGN: reconstruction of heterogeneous structures from
cryo-electron micrographs using neural networks"): a VAE with known poses, written from the paper
(cited by section, [cryoDRGN, ...], see docs/references.md) and, where the paper is silent, the
authors' published code.

Data, in Hartley space. A batch image x (real space, windowed, scale-normalised) is Fourier
transformed on the centred grid, translated by +shift (which centres the particle) and turned
into its centred Hartley transform divided by D: ``Y(k) = (Re F - Im F)(k) / D``. With this
scaling white noise of real-space variance s^2 has variance ~s^2 per Hartley pixel.

Decoder. A coordinate network V(K, z) -> (a, b), the real and imaginary parts of the volume's
scaled transform at K in box fractions (|K| < 1/2), evaluated on the half-space K_z <= 0 only
(the other half by Friedel symmetry, F(-K) = conj F(K)). K is featurised by a fixed positional
encoding (``pe``): ``geom_ft`` is the paper's equation (angular frequencies D*pi*(2/D)^(i/(D/2-1)),
i = 0..D/2-1, [cryoDRGN, Methods "Deep coordinate networks to represent 3D structure"]);
``geom_lowf`` divides them by 2*pi, the paper's option for noisy data (same section);
``gaussian`` uses random angular frequencies b ~ N(0, (pe_sigma * D/2)^2) per output
feature, sin(b . K) and cos(b . K) without a factor 2 pi (cryoDRGN's ``--pe-type gaussian``): with
pe_sigma 0.5 a typical feature's phase turns by ~D/4 radians across the whole box (about one period at
D=32; 2 pi times that with the factor), a low-frequency prior. The
3D features are concatenated with z (same section) and fed to a residual ReLU MLP.

Image model. Image frequencies k in a circle of radius D/2 are split in a half set P (with the
origin) and its mirror -P. The decoder runs only on P at K = A^T k (the RELION slice,
``geometry.projection.slice_coords``); Friedel symmetry of a real map gives the Hartley values
H(k) = a - b and H(-k) = a + b. The prediction is CTF(k) * H(k) with our (RELION, protein-bright)
CTF, compared with Y by mean squared error [cryoDRGN, Methods "Training system"]. No contrast
inversion is needed for protein-bright images (cryoDRGN's CTF is the negative of ours and it
inverts data by default).

Encoder. q(z | x) from the phase-flipped (x sign(CTF)), centred Hartley image inside the same
circle, flattened, through a residual ReLU MLP giving the mean and log-variance [cryoDRGN,
Methods "Training system"; the input as in the authors' published code]. Loss = MSE + beta * KL /
N_pixels, one reparameterised sample; beta defaults to 1 / zdim (the authors' published code; the
paper names no weight). ``zdim = 0`` is the homogeneous deep coordinate network (no encoder, no KL).

Choices checked against cryoDRGN 4.3.1 (run as a peer by benchmarks/train_vs_cryodrgn.py; see
benchmarks/RESULTS.md): the loss excludes the DC pixel (as cryoDRGN's ``ignore_DC``); images
are divided by the std of the *unwindowed* images (cryoDRGN's HT normalisation, ``data.py``);
the z weights of the decoder's first layer are initialised as part of one Linear over the
concatenated [pe(K), z] input (as cryoDRGN's concatenation does; initialising them as a separate
Linear(zdim, width) gave z ~5x larger initial weights and measurably slower training).

Speed (CPU). The hidden residual blocks of both MLPs run as one fused autograd function; the
positional encoding is one ``sin`` of [phase, phase + pi/2] in float32; the training loop runs
the step under bfloat16 autocast on CPUs with bfloat16 matrix instructions (AMX or AVX-512 BF16) (``Config.precision``), with float32 weights,
positional encoding, slice coordinates, outputs and loss.

Volumes. ``decode_volume`` evaluates the decoder on the half of the 3D lattice inside the sphere
of radius D/2 (the other half by symmetry), and inverts the Hartley transform: the map has the
scale of ``reconstruct.py`` (images were divided by ``data_info.scale``; it is multiplied back).
"""
import math

import torch
from torch import nn

from ..geometry.ctf import ctf_2d
from ..geometry.fourier import fft2_center, freqs_1d, iht3_center, phase_shift_2d
from ..configs import CryoDRGNConfig
from .base import Encoding, Method, autocast_mode as _autocast_mode


class ResidualMLP(nn.Module):
    """Linear(n_in, width) + ReLU, then ``layers`` hidden residual blocks y = ReLU(Wx + b + x)
    (He et al. 2016), then Linear(width, n_out). "width x layers" counts the hidden blocks, as
    the paper's "nodes/layer x layers" and cryoDRGN's --enc-layers / --dec-layers do. With
    ``n_cond`` > 0 a conditioning vector c (B, n_cond) joins the input of every point of x
    (B, M, n_in) as if concatenated to it (its product with the first layer's weights is computed
    once per row, not once per point).

    The hidden blocks run as one fused autograd function (:class:`_ResidualStack`): the same maths
    as ``relu(layer(h) + h)`` per block, with fewer passes over the activations (bias, residual
    and ReLU in place; the residual gradient folded into the matrix product). Under autocast the
    activations and weight copies are in the autocast dtype; the parameters and their gradients
    stay float32."""

    def __init__(self, n_in, width, layers, n_out, n_cond=0):
        super().__init__()
        self.first = nn.Linear(n_in, width)
        self.cond = nn.Linear(n_cond, width, bias=False) if n_cond > 0 else None
        if n_cond > 0:
            # Initialise as the one Linear(n_in + n_cond, width) it stands for (PyTorch's default
            # bound 1/sqrt(fan_in) over the concatenated input), not as two separate layers
            # (whose z weights would start ~sqrt(n_in / n_cond) times larger).
            bound = 1.0 / math.sqrt(n_in + n_cond)
            with torch.no_grad():
                for p in (self.first.weight, self.first.bias, self.cond.weight):
                    p.uniform_(-bound, bound)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        self.last = nn.Linear(width, n_out)

    def forward(self, x, cond=None):
        h = self.first(x)
        if self.cond is not None:
            h = h + self.cond(cond)[:, None, :]
        return self.after_first(h)

    def after_first(self, h, inplace=False):
        """The network from the first layer's output (before its ReLU) on (``inplace``: h may be
        overwritten, without gradients)."""
        h = h.relu_() if inplace else torch.relu(h)
        if len(self.hidden):
            shape = h.shape
            wb = [p for layer in self.hidden for p in (layer.weight, layer.bias)]
            h = _ResidualStack.apply(h.reshape(-1, shape[-1]), *wb).reshape(shape)
        return self.last(h)


class _ResidualStack(torch.autograd.Function):
    """h -> relu(h W_1^T + b_1 + h) -> ... for (N, width) activations h (their dtype is the
    compute dtype); arguments after h: W_1, b_1, W_2, b_2, ..."""

    @staticmethod
    def forward(ctx, h, *wb):
        dtype = h.dtype
        ws = [w.to(dtype) for w in wb[0::2]]
        outs = [h]
        with torch.autocast(h.device.type, enabled=False):
            for w, b in zip(ws, wb[1::2]):
                o = torch.addmm(b.to(dtype), h, w.t())
                o += h
                h = o.relu_()
                outs.append(h)
        ctx.save_for_backward(*outs, *ws)
        ctx.n = len(ws)
        ctx.dtypes = [p.dtype for p in wb]
        return h

    @staticmethod
    def backward(ctx, g):
        n = ctx.n
        saved = ctx.saved_tensors
        outs, ws = saved[:n + 1], saved[n + 1:]
        grads = [None] * (2 * n)
        with torch.autocast(g.device.type, enabled=False):
            g = g.to(outs[0].dtype)
            for i in reversed(range(n)):
                g = torch.ops.aten.threshold_backward(g, outs[i + 1], 0)
                grads[2 * i] = (g.t() @ outs[i]).to(ctx.dtypes[2 * i])
                grads[2 * i + 1] = g.sum(0).to(ctx.dtypes[2 * i + 1])  # fp32 accumulation inside
                if i > 0 or ctx.needs_input_grad[0]:
                    g = torch.addmm(g, g, ws[i])          # residual + linear paths
        return (g if ctx.needs_input_grad[0] else None, *grads)


class PositionalEncoding(nn.Module):
    """(..., 3) coordinates in box fractions -> (..., 3 * D) features (sin and cos)."""

    def __init__(self, kind, box, sigma):
        super().__init__()
        half = box // 2
        i = torch.arange(half, dtype=torch.float32)
        geom = (2.0 / box) ** (i / max(half - 1, 1))
        if kind == "geom_ft":
            freqs = torch.block_diag(*[(box * math.pi * geom)[None]] * 3)
        elif kind == "geom_lowf":
            freqs = torch.block_diag(*[(half * geom)[None]] * 3)
        elif kind == "gaussian":
            freqs = torch.randn(3, 3 * half) * sigma * half
        else:
            raise ValueError("unknown positional encoding %r (geom_lowf, geom_ft, gaussian)" % kind)
        # freqs[j, m]: angular frequency of feature m along coordinate j (diagonal for geom_*).
        self.register_buffer("freqs", freqs)

    @property
    def separable(self):
        """True when every feature depends on one coordinate only (geometric frequencies): then
        PE(x, y, z) = PE(x, 0, 0) + PE(0, y, 0) + PE(0, 0, z) - 2 PE(0, 0, 0)."""
        return bool(((self.freqs != 0).sum(0) <= 1).all())

    def forward(self, coords):
        # Always float32 (also under autocast): phases reach ~D/2 radians, which bfloat16 would
        # round by up to ~0.1 rad.
        with torch.autocast(coords.device.type, enabled=False):
            # [sin(phase), cos(phase)] as one sin of [phase, phase + pi/2] (no concatenation).
            freqs = torch.cat([self.freqs, self.freqs], dim=1)
            offset = torch.cat([torch.zeros_like(self.freqs[0]),
                                torch.full_like(self.freqs[0], math.pi / 2)])
            x = coords.float()
            phase = torch.addmm(offset, x.reshape(-1, 3), freqs).reshape(x.shape[:-1] + (-1,))
            return phase.sin_()


class CryoDRGN(Method):
    """cryoDRGN: VAE with an MLP image encoder and a Hartley-space coordinate decoder."""
    name = "cryodrgn"
    Config = CryoDRGNConfig

    def __init__(self, config, data_info, inputs=None):
        super().__init__(config, data_info, inputs)
        d = data_info.box
        self.pe = PositionalEncoding(config.pe, d, config.pe_sigma)
        self.decoder = ResidualMLP(3 * d, config.dec_dim, config.dec_layers, 2, n_cond=config.zdim)
        half_idx, mirror_idx, circle_idx, kfrac = _image_lattice(d)
        self.register_buffer("half_idx", half_idx, persistent=False)      # P (origin first)
        self.register_buffer("mirror_idx", mirror_idx, persistent=False)  # -P without the origin
        self.register_buffer("circle_idx", circle_idx, persistent=False)  # encoder input pixels
        self.register_buffer("half_k", kfrac, persistent=False)           # (|P|, 2) xy fractions
        # Loss pixels: the circle without the DC pixel (as the authors' published code): the image
        # mean carries no structure after windowing/normalisation.
        self.register_buffer("loss_idx", torch.cat([half_idx[1:], mirror_idx]), persistent=False)
        self.encoder = (ResidualMLP(len(circle_idx), config.enc_dim, config.enc_layers,
                                    2 * config.zdim) if config.zdim > 0 else None)
        self.beta = (config.beta if config.beta is not None
                     else (1.0 / config.zdim if config.zdim > 0 else 0.0))

    # -- data ------------------------------------------------------------------------------------
    def _hartley(self, batch):
        """(centred Hartley images (B, D*D), CTF (B, D*D) or None)."""
        img = batch["images"]
        d = img.shape[-1]
        f = phase_shift_2d(fft2_center(img), batch["shifts_px"])
        y = ((f.real - f.imag) / d).flatten(1)
        ctf = (ctf_2d(d, self.data_info.apix, batch["ctf"], device=img.device).flatten(1)
               if "ctf" in batch else None)
        return y, ctf

    def _posterior(self, y, ctf):
        x = y if ctf is None else y * torch.sign(ctf)
        out = self.encoder(x[:, self.circle_idx]).float()
        return out[:, :self.zdim], out[:, self.zdim:]

    # -- decoder ---------------------------------------------------------------------------------
    def _decode(self, coords, z):
        """(a, b) = (Re, Im) at (B, M, 3) coordinates for latents z (B, zdim). The network only
        sees the half-space K_z <= 0: at K_z > 0 it is evaluated at -K and conjugated (Friedel
        symmetry), so observations at K and -K train the same inputs."""
        flip = coords[..., 2] > 0
        out = self.decoder(self.pe(torch.where(flip[..., None], -coords, coords)), z).float()
        return out[..., 0], torch.where(flip, -out[..., 1], out[..., 1])

    def _predict(self, rotations, z):
        """Hartley values (B, |P| + |-P|) at the pixels half_idx then mirror_idx."""
        with torch.autocast(rotations.device.type, enabled=False):
            coords = torch.einsum("mi,bij->bmj", self.half_k, rotations[:, :2, :].float())
        a, b = self._decode(coords, z)
        return torch.cat([a - b, (a + b)[:, 1:]], dim=1)

    # -- contract --------------------------------------------------------------------------------
    def training_step(self, batch):
        y, ctf = self._hartley(batch)
        n = len(y)
        if self.zdim > 0:
            mu, logvar = self._posterior(y, ctf)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
        else:
            z, kl = torch.zeros(n, 0, device=y.device), torch.zeros((), device=y.device)
        pred = self._predict(batch["rotations"], z)[:, 1:]   # without the DC pixel
        pix = self.loss_idx
        if ctf is not None:
            pred = pred * ctf[:, pix]
        mse = ((pred - y[:, pix]) ** 2).mean()
        loss = mse + self.beta * kl / len(pix)
        return {"loss": loss, "mse": float(mse.detach()), "kl": float(kl.detach())}

    @torch.no_grad()
    def encode(self, batch):
        if self.zdim == 0:
            return Encoding(z=torch.zeros(len(batch["images"]), 0))
        mu, _ = self._posterior(*self._hartley(batch))
        return Encoding(z=mu)

    def _decode_lattice(self, k, z, d, chunk):
        """(Re, Im) at lattice points of integer frequencies k = (kx, ky, kz) (each (M,), K_z <= 0)
        with the separable positional encoding: the first layer becomes table look-ups (no sine,
        no first matrix product): one table over x and one over the (y, z) rows, then the network
        runs in the training precision, in chunks small enough to stay in the CPU's caches."""
        tables, const = _lattice_tables(self, d, z)
        dtype, _ = _autocast_mode(self.config.precision, z.device)
        ix, iy, iz = [(kj.long() + d // 2) for kj in k]
        rows = (tables[1][None, :, :] + tables[2][:, None, :] + const).reshape(d * d, -1)  # [z, y]
        row_idx = iz * d + iy
        dt = dtype or torch.float32
        tx, rows = tables[0].to(dt), rows.to(dt)
        out = torch.empty(len(ix), 2, device=z.device)
        with torch.autocast(z.device.type, dtype=dt, enabled=dtype is not None):
            for a in range(0, len(ix), chunk):
                h = tx.index_select(0, ix[a:a + chunk])
                h += rows.index_select(0, row_idx[a:a + chunk])
                out[a:a + chunk] = self.decoder.after_first(h, inplace=True).float()
        return out[:, 0], out[:, 1]

    @torch.no_grad()
    def decode_volume(self, z, box=None, chunk=4096):
        d0, d = self.data_info.box, self.decode_box(box)
        z = torch.as_tensor(z, dtype=torch.float32, device=self.half_k.device).reshape(1, self.zdim)
        f = freqs_1d(d, self.half_k.device) * d
        kz, ky, kx = torch.meshgrid(f, f, f, indexing="ij")
        r2 = kx ** 2 + ky ** 2 + kz ** 2
        # Half lattice: kz < 0, or kz == 0 and (ky < 0 or ky == 0 and kx <= 0); origin included.
        half = (r2 < (d / 2) ** 2) & ((kz < 0) | ((kz == 0) & ((ky < 0) | ((ky == 0) & (kx <= 0)))))
        if self.pe.separable:
            a, b = self._decode_lattice([kx[half], ky[half], kz[half]], z, d, chunk)
        else:
            coords = torch.stack([kx[half], ky[half], kz[half]], dim=-1) / d0
            ab = [self._decode(c[None], z) for c in coords.split(chunk)]
            a = torch.cat([x[0][0] for x in ab])
            b = torch.cat([x[1][0] for x in ab])
        h = torch.zeros(d, d, d, device=a.device)
        h[half] = a - b
        mirror = torch.zeros_like(h)
        mirror[half] = a + b
        # mirror(K) holds H at -K: flip every axis about the centre index d//2.
        mirror = torch.roll(torch.flip(mirror, dims=(0, 1, 2)), shifts=(1, 1, 1), dims=(0, 1, 2))
        origin = (d // 2,) * 3
        mirror[origin] = 0
        vol = iht3_center(h + mirror) * d0 * (d / d0) ** 3
        return vol * self.data_info.scale


def _lattice_tables(model, d, z):
    """First-layer pre-activations of the decoder on a lattice, per axis: (3, d, width) tables
    for the integer frequencies -d/2 .. d/2-1 along x, y, z, and the constant (width,) term
    (bias, latent, and -2 PE(0) as the separable encoding needs)."""
    dev = z.device
    w = model.decoder.first.weight
    vals = (torch.arange(d, device=dev, dtype=torch.float32) - d // 2) / model.data_info.box
    coords = torch.zeros(3, d, 3, device=dev)
    for j in range(3):
        coords[j, :, j] = vals
    tables = torch.nn.functional.linear(model.pe(coords), w)                  # (3, d, width)
    const = model.decoder.first.bias - 2 * torch.nn.functional.linear(model.pe(torch.zeros(1, 3, device=dev)), w)[0]
    if model.decoder.cond is not None:
        const = const + model.decoder.cond(z)[0]
    return tables, const


def _image_lattice(d):
    """Pixel indices (flattened D x D, centred grid) of the half set P (origin first), of its
    mirror -P (same order, without the origin), of the whole circle |k| < D/2, and P's (x, y)
    frequencies in box fractions."""
    f = freqs_1d(d) * d
    ky, kx = torch.meshgrid(f, f, indexing="ij")
    kx, ky = kx.reshape(-1), ky.reshape(-1)
    circle = kx ** 2 + ky ** 2 < (d / 2) ** 2
    origin = (kx == 0) & (ky == 0)
    half = circle & ((ky < 0) | ((ky == 0) & (kx < 0)))
    half_idx = torch.cat([torch.nonzero(origin)[:, 0], torch.nonzero(half)[:, 0]])
    mx = (-kx[half_idx] + d // 2).long()
    my = (-ky[half_idx] + d // 2).long()
    mirror_idx = (my * d + mx)[1:]
    kfrac = torch.stack([kx[half_idx], ky[half_idx]], dim=-1) / d
    return half_idx, mirror_idx, torch.nonzero(circle)[:, 0], kfrac
