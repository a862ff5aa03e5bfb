"""Homogeneous reconstruction with known poses and CTF: direct Fourier inversion.

Each image is windowed (soft circle), zero-padded ``pad``-fold, Fourier transformed, centred
(phase ramp by +origin), multiplied by its CTF and inserted with trilinear weights at
A^T (kx, ky, 0) into a (padded) 3D grid that accumulates sum(CTF * F) and sum(CTF^2), for two half sets. The maps are Wiener
estimates sum(CTF * F) / (sum(CTF^2) + 1 / SSNR-term) with the per-shell SSNR estimated from the
half-map FSC, as in RELION's reconstruction.
"""
import time

import numpy as np
import torch

from .analysis.fsc import fsc
from .geometry.ctf import ctf_2d
from .geometry.fourier import (fft2_center, ifft3_center, phase_shift_2d, pad_center, crop_center,
                               fourier_crop, radial_index, soft_circular_window)
from .geometry.projection import slice_coords


class _Accumulator:
    """sum(CTF * F) (real, imaginary) and sum(CTF^2) on a centred (P, P, P) grid.

    Images are real, so only the half plane kx >= 0 is inserted (kx = 0 with weight 1/2); the
    other half follows from Friedel symmetry S(-K) = conj(S(K)) when the map is made.
    """

    def __init__(self, p):
        self.p = p
        self.sums = torch.zeros(3, p ** 3, dtype=torch.float64)

    def insert(self, coords, values, weights):
        """coords (M, 3) xyz in pixels from the centre, |coords| < P/2 - 1; values (M,) complex;
        weights (M,) real. Trilinear: each point spreads over its 8 neighbouring voxels."""
        p = self.p
        g = coords + p // 2
        g0 = torch.floor(g)
        f = g - g0
        g0 = g0.long()
        base = (g0[:, 2] * p + g0[:, 1]) * p + g0[:, 0]
        idx, wts = [], []
        for dz in (0, 1):
            for dy in (0, 1):
                for dx in (0, 1):
                    wts.append((f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1])
                               * (f[:, 2] if dz else 1 - f[:, 2]))
                    idx.append(base + ((dz * p + dy) * p + dx))
        idx, wts = torch.cat(idx), torch.cat(wts)
        for k, v in enumerate((values.real, values.imag, weights)):
            self.sums[k] += torch.bincount(idx, weights=wts * v.repeat(8), minlength=p ** 3)

    def friedel(self):
        """(num, den) on the full grid from the half-plane sums."""
        p = self.p
        s = self.sums.reshape(3, p, p, p)
        m = torch.roll(torch.flip(s, dims=(1, 2, 3)), shifts=(1, 1, 1), dims=(1, 2, 3))  # S(-K)
        num = torch.complex(s[0] + m[0], s[1] - m[1])
        return num, s[2] + m[2]

    def volume(self, reg):
        """Real-space (P, P, P) map for a regularisation term ``reg`` (scalar or (P, P, P))."""
        num, den = self.friedel()
        den = den + reg
        # Voxels no image reached (den == 0) stay zero.
        return ifft3_center(torch.where(den > 0, num / den.clamp_min(1e-30), 0)).real

    @property
    def den(self):
        return self.friedel()[1].reshape(-1)


def _shell_mean(values, shells, n):
    s = torch.zeros(n, dtype=torch.float64).index_add_(0, shells, values.double())
    c = torch.zeros(n, dtype=torch.float64).index_add_(0, shells, torch.ones_like(values, dtype=torch.float64))
    return s / c.clamp_min(1)


def reconstruct(table, images, box=None, pad=1, batch=64, invert=False, window=0.85, seed=0, log=print):
    """Reconstruct a map from a ParticleTable with poses (and CTF if present).

    ``images`` has ``get(indices) -> (n, D, D)`` (io.ImageSource). ``window``: images are multiplied
    by a soft circular window, 1 inside ``window`` * D/2 and 0 at the edge (None: no window). Returns a dict with ``map``,
    ``half1``, ``half2`` (numpy (box, box, box)), ``apix``, ``freqs`` and ``fsc`` (half maps).
    """
    if table.rotations is None:
        raise ValueError("%s: the particles have no poses (angles); reconstruction needs them"
                         % (table.source or "particles"))
    n = len(table)
    d0 = table.box
    box = d0 if box is None else int(box)
    apix = table.apix * d0 / box
    p = pad * box
    halves = _half_sets(table, seed)
    win = soft_circular_window(box, inner=window, outer=0.99) if window else None
    acc = [_Accumulator(p), _Accumulator(p)]
    # Frequencies inside the circle of radius P/2 - 1 (all 8 neighbours exist), half plane kx >= 0.
    kx = torch.arange(p) - p // 2
    inside = ((radial_index(p, 2) < p // 2 - 1) & (kx[None, :] >= 0)).reshape(-1)
    half_weight = torch.where(kx == 0, 0.5, 1.0).expand(p, p).reshape(-1)[inside]
    t0 = time.time()
    for a in range(0, n, batch):
        sel = np.arange(a, min(n, a + batch))
        img = torch.as_tensor(images.get(sel), dtype=torch.float32)
        if invert:
            img = -img
        img = fourier_crop(img, box)
        if window:
            img = img * win
        f = fft2_center(pad_center(img, p))
        if table.shifts_A is not None:   # move the particle to the centre: +origin
            f = phase_shift_2d(f, torch.as_tensor(table.shifts_A[sel] / apix, dtype=torch.float32))
        if table.ctf is not None:
            c = ctf_2d(p, apix, table.ctf[sel])
        else:
            c = torch.ones(len(sel), p, p)
        coords = slice_coords(p, torch.as_tensor(table.rotations[sel], dtype=torch.float32))
        for h in (0, 1):
            m = torch.as_tensor(halves[sel] == h)
            if not m.any():
                continue
            k = int(m.sum())
            w = half_weight.repeat(k)
            acc[h].insert(coords[m].reshape(k, -1, 3)[:, inside].reshape(-1, 3),
                          (c[m] * f[m]).reshape(k, -1)[:, inside].reshape(-1) * w,
                          (c[m] ** 2).reshape(k, -1)[:, inside].reshape(-1) * w)
        done = sel[-1] + 1
        log("reconstruct: %d/%d particles (%.0f s)" % (done, n, time.time() - t0))
    return _finish(acc, p, box, pad, apix)


def _half_sets(table, seed):
    """0/1 per particle: RELION's rlnRandomSubset when the star has it, else a seeded random split."""
    subset = table.extra.get("rlnRandomSubset")
    if subset is not None:
        try:
            h = np.asarray(subset, dtype=float).astype(int) - 1
            if set(np.unique(h)) == {0, 1}:
                return h
        except ValueError:
            pass
    rng = np.random.default_rng(seed)
    h = np.zeros(len(table), int)
    h[rng.permutation(len(table))[: len(table) // 2]] = 1
    return h


def _finish(acc, p, box, pad, apix):
    shells = radial_index(p, 3).reshape(-1)
    nshell = int(shells.max()) + 1

    def wiener_reg(den, ssnr_box):
        # 1/tau^2 term per shell: mean(sum CTF^2) / SSNR; SSNR given on the box's shells.
        mean_den = _shell_mean(den, shells, nshell)
        r_box = torch.arange(nshell, dtype=torch.float64) / pad
        ssnr = torch.as_tensor(np.interp(r_box.numpy(), np.arange(len(ssnr_box)), ssnr_box,
                                         right=1e-3))
        return (mean_den / ssnr.clamp_min(1e-3))[shells].reshape(p, p, p).float()

    # Preliminary half maps with a small flat term, their FSC gives the SSNR per shell.
    prelim = [crop_center(a.volume(1e-3 * a.den.mean()), box, ndim=3) for a in acc]
    _, c0 = fsc(prelim[0].numpy(), prelim[1].numpy())
    c0 = np.clip(c0, 1e-3, 0.999)
    ssnr_half = c0 / (1 - c0)
    halves = [crop_center(a.volume(wiener_reg(a.den, ssnr_half)), box, ndim=3).numpy() for a in acc]
    full = _Accumulator(p)
    full.sums = acc[0].sums + acc[1].sums
    vol = crop_center(full.volume(wiener_reg(full.den, 2 * ssnr_half)), box, ndim=3).numpy()
    freqs, curve = fsc(halves[0], halves[1])
    return dict(map=vol, half1=halves[0], half2=halves[1], apix=apix, freqs=freqs, fsc=curve)
