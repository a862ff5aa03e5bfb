"""Centred Fourier and Hartley transforms, phase-ramp shifts, Fourier cropping, windows.

Real-space origin is at index D//2 (``vol[z, y, x]``, ``img[y, x]``); transforms put the
zero frequency at index D//2 too. Frequencies are in cycles per pixel, ``(i - D//2) / D``.
Everything works on torch tensors over the last two (2D) or three (3D) dimensions.
"""
import math

import torch

_2D = (-2, -1)
_3D = (-3, -2, -1)


def fft2_center(x):
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=_2D), dim=_2D), dim=_2D)


def ifft2_center(f):
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(f, dim=_2D), dim=_2D), dim=_2D)


def fft3_center(v):
    return torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(v, dim=_3D), dim=_3D), dim=_3D)


def ifft3_center(f):
    return torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(f, dim=_3D), dim=_3D), dim=_3D)


def ht2_center(x):
    """Centred 2D Hartley transform: Re(F) - Im(F)."""
    f = fft2_center(x)
    return f.real - f.imag


def iht2_center(h):
    """Inverse of ``ht2_center`` (the Hartley transform is its own inverse up to 1/N)."""
    f = fft2_center(h)
    return (f.real - f.imag) / (h.shape[-1] * h.shape[-2])


def ht3_center(v):
    f = fft3_center(v)
    return f.real - f.imag


def iht3_center(h):
    f = fft3_center(h)
    return (f.real - f.imag) / (h.shape[-1] * h.shape[-2] * h.shape[-3])


def hartley_to_fourier(h):
    """Complex centred FT from a centred Hartley transform of a real signal (last two dims).

    F(k) = (H(k) + H(-k)) / 2 - i (H(k) - H(-k)) / 2.
    """
    hm = _mirror2(h)
    return torch.complex((h + hm) / 2, -(h - hm) / 2)


def _mirror2(x):
    """x(-k) for centred 2D grids (index D//2 is the origin)."""
    d0, d1 = x.shape[-2], x.shape[-1]
    i0 = (d0 // 2 - (torch.arange(d0) - d0 // 2)) % d0
    i1 = (d1 // 2 - (torch.arange(d1) - d1 // 2)) % d1
    return x[..., i0, :][..., :, i1]


def freqs_1d(d, device=None, dtype=torch.float32):
    return (torch.arange(d, device=device, dtype=dtype) - d // 2) / d


def freq_grid_2d(d, device=None, dtype=torch.float32):
    """(d, d, 2) grid of (fx, fy) in cycles/pixel; [..., 0] varies along x (last axis)."""
    f = freqs_1d(d, device, dtype)
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    return torch.stack([fx, fy], dim=-1)


def radial_index(d, ndim, device=None):
    """Integer shell index round(|k| * d) for a centred grid of size d in 2 or 3 dimensions."""
    f = freqs_1d(d, device, torch.float64) * d
    grids = torch.meshgrid(*([f] * ndim), indexing="ij")
    return torch.round(torch.sqrt(sum(g ** 2 for g in grids))).long()


def phase_shift_2d(f, shifts_px):
    """Move the content of images whose centred FTs are ``f`` (..., D, D) by ``shifts_px`` (..., 2).

    Positive (sx, sy) moves the content towards larger x / y indices.
    """
    d = f.shape[-1]
    g = freq_grid_2d(d, f.device, torch.float32 if f.dtype == torch.complex64 else torch.float64)
    s = shifts_px.to(g.dtype)
    phase = -2 * math.pi * (g[..., 0] * s[..., None, None, 0] + g[..., 1] * s[..., None, None, 1])
    return f * torch.polar(torch.ones_like(phase), phase)


def shift_images(x, shifts_px):
    """Real images (..., D, D) moved by ``shifts_px`` (..., 2) with a phase ramp (periodic)."""
    return ifft2_center(phase_shift_2d(fft2_center(x), shifts_px)).real


def fourier_crop(x, d_new):
    """Downsample real images (..., D, D) to (..., d_new, d_new) by cropping their transform.

    The pixel size grows by D / d_new; image values keep their scale (mean preserved).
    """
    d = x.shape[-1]
    if d_new == d:
        return x
    if d_new > d:
        raise ValueError("cannot Fourier-crop a %d box up to %d" % (d, d_new))
    f = fft2_center(x)
    a = d // 2 - d_new // 2
    f = f[..., a:a + d_new, a:a + d_new]
    return ifft2_center(f).real * (d_new / d) ** 2


def fourier_crop_3d(v, d_new):
    d = v.shape[-1]
    if d_new == d:
        return v
    f = fft3_center(v)
    a = d // 2 - d_new // 2
    f = f[..., a:a + d_new, a:a + d_new, a:a + d_new]
    return ifft3_center(f).real * (d_new / d) ** 3


def pad_center(x, d_new, ndim=2):
    """Zero-pad the last ``ndim`` dims from D to d_new keeping the origin at index d//2."""
    d = x.shape[-1]
    a = d_new // 2 - d // 2
    pads = []
    for _ in range(ndim):
        pads += [a, d_new - d - a]
    return torch.nn.functional.pad(x, pads)


def crop_center(x, d_new, ndim=2):
    d = x.shape[-1]
    a = d // 2 - d_new // 2
    sl = (Ellipsis,) + (slice(a, a + d_new),) * ndim
    return x[sl]


def soft_circular_window(d, inner=0.85, outer=0.99, device=None):
    """(d, d) window: 1 inside ``inner`` * D/2, cosine edge to 0 at ``outer`` * D/2."""
    f = freqs_1d(d, device, torch.float32) * 2   # -1 .. 1 across the box
    y, x = torch.meshgrid(f, f, indexing="ij")
    r = torch.sqrt(x ** 2 + y ** 2)
    t = ((r - inner) / max(outer - inner, 1e-6)).clamp(0, 1)
    return 0.5 * (1 + torch.cos(math.pi * t))
