"""The contrast transfer function, one formula for the whole engine.

RELION's sign convention: CTF(s) = -sqrt(1 - w^2) sin(gamma) + w cos(gamma), with
gamma(s) = -pi * lambda * df(theta) * s^2 + (pi / 2) * Cs * lambda^3 * s^4 - phase_shift,
df(theta) = (dU + dV) / 2 + (dU - dV) / 2 * cos(2 (theta - angle)), theta = atan2(sy, sx),
lambda = 12.2643247 / sqrt(V (1 + 0.978466e-6 V)) Å (V in volts), times exp(-B s^2 / 4).
For an underfocused image the CTF is positive at low frequency, so an image of positive density
is bright ("protein bright", RELION's default). cryoDRGN's CTF is the negative of this one.
"""
import math

import torch

from .fourier import freq_grid_2d


def electron_wavelength(kv):
    """Relativistic electron wavelength in Å for an acceleration voltage in kV."""
    v = kv * 1e3
    return 12.2643247 / torch.sqrt(v * (1 + 0.978466e-6 * v)) if torch.is_tensor(v) \
        else 12.2643247 / math.sqrt(v * (1 + 0.978466e-6 * v))


def ctf_from_freqs(sx, sy, defocus_u, defocus_v, defocus_angle, voltage, cs, amp_contrast,
                   phase_shift=0.0, bfactor=0.0):
    """CTF at spatial frequencies (sx, sy) in 1/Å.

    Frequencies have shape (..., H, W); each parameter is a scalar or a tensor of shape (...,)
    (one value per image). Defocus in Å, angles in degrees, voltage kV, Cs mm, B in Å^2.
    """
    def per_image(p):
        p = torch.as_tensor(p, dtype=sx.dtype, device=sx.device)
        return p[..., None, None] if p.ndim else p

    du, dv, ang = per_image(defocus_u), per_image(defocus_v), per_image(defocus_angle)
    kv, csa, w = per_image(voltage), per_image(cs), per_image(amp_contrast)
    ps, b = per_image(phase_shift), per_image(bfactor)
    lam = electron_wavelength(kv)
    s2 = sx ** 2 + sy ** 2
    theta = torch.atan2(sy, sx)
    df = 0.5 * (du + dv) + 0.5 * (du - dv) * torch.cos(2 * (theta - torch.deg2rad(ang)))
    gamma = (-math.pi * lam * df * s2 + 0.5 * math.pi * (csa * 1e7) * lam ** 3 * s2 ** 2
             - torch.deg2rad(ps))
    ctf = -torch.sqrt(1 - w ** 2) * torch.sin(gamma) + w * torch.cos(gamma)
    return ctf * torch.exp(-b / 4 * s2)


def ctf_2d(box, apix, params, device=None, dtype=torch.float32):
    """(N, box, box) CTF images on the centred grid for an (N, 8) parameter table.

    Columns of ``params`` follow ``io.table.CTF_FIELDS``: defocus_u, defocus_v, defocus_angle,
    voltage, cs, amp_contrast, phase_shift, bfactor.
    """
    g = freq_grid_2d(box, device, dtype) / apix
    p = torch.as_tensor(params, dtype=dtype, device=device)
    return ctf_from_freqs(g[..., 0], g[..., 1], *(p[:, i] for i in range(8)))
