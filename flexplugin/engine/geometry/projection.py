"""Projection of volumes: central slices of the 3D transform, and real-space splatting.

Convention (RELION): the image under rotation A is the projection along z of V(A^T r), so its
centred 2D transform is the 3D transform sampled at A^T (kx, ky, 0).
"""
import torch

from .fourier import fft3_center, ifft2_center, pad_center, crop_center, freqs_1d


def slice_coords(box, rotations, dtype=torch.float32):
    """3D frequency coordinates (N, box, box, 3) in pixels of A^T (kx, ky, 0)."""
    f = freqs_1d(box, rotations.device, dtype) * box
    ky, kx = torch.meshgrid(f, f, indexing="ij")
    k2 = torch.stack([kx, ky], dim=-1)                        # (box, box, 2)
    # (A^T k)_j = sum_i A_ij k_i for i in (x, y): rows 0 and 1 of A.
    return torch.einsum("yxi,nij->nyxj", k2, rotations[:, :2, :].to(dtype))


def sample_3d(grid, coords):
    """Trilinear samples of a centred (D, D, D) grid (real or complex) at (..., 3) xyz coords in
    pixels from the centre; zero outside."""
    d = grid.shape[-1]
    shape = coords.shape[:-1]
    # grid_sample with align_corners=True maps -1 -> index 0, +1 -> index d-1.
    norm = (coords.reshape(1, -1, 1, 1, 3) + d // 2) * (2.0 / (d - 1)) - 1
    def one(v):
        return torch.nn.functional.grid_sample(v[None, None], norm.to(v.dtype), mode="bilinear",
                                               padding_mode="zeros", align_corners=True).reshape(shape)
    if grid.is_complex():
        return torch.complex(one(grid.real), one(grid.imag))
    return one(grid)


def project_fourier(vol, rotations, pad=2):
    """Projections (N, D, D) of a real volume (D, D, D) by Fourier slicing with ``pad``-fold
    oversampling of the transform."""
    d = vol.shape[-1]
    p = pad * d
    vf = fft3_center(pad_center(vol, p, ndim=3))
    sl = sample_3d(vf, slice_coords(p, rotations))
    return crop_center(ifft2_center(sl).real, d)


def project_real(vol, rotations, chunk=8):
    """Projections (N, D, D) by rotating voxel centres (p = A r) and splatting them bilinearly."""
    d = vol.shape[-1]
    f = freqs_1d(d, vol.device, vol.dtype) * d
    z, y, x = torch.meshgrid(f, f, f, indexing="ij")
    keep = vol.reshape(-1) != 0
    r = torch.stack([x.reshape(-1), y.reshape(-1), z.reshape(-1)], dim=-1)[keep]   # (M, 3)
    w = vol.reshape(-1)[keep]
    out = []
    for a in rotations.to(vol.dtype).split(chunk):
        p = torch.einsum("nij,mj->nmi", a[:, :2, :], r) + d // 2      # (n, M, 2) pixel coords
        out.append(splat_bilinear(p[..., 0], p[..., 1], w.expand(p.shape[0], -1), d))
    return torch.cat(out)


def splat_bilinear(px, py, weights, d):
    """Bilinear splat of points at pixel indices (px, py), each (B, M), with (B, M) weights into
    (B, d, d), or with (B, C, M) weights (C channels at the same points) into (B, C, d, d), in
    one scatter on a padded grid (points beyond the border are clamped onto the padding and
    cropped away)."""
    n, pad = px.shape[0], 2
    size = d + 2 * pad
    qx = px.clamp(-pad, d + pad - 1.001) + pad
    qy = py.clamp(-pad, d + pad - 1.001) + pad
    x0, y0 = torch.floor(qx), torch.floor(qy)
    fx, fy = qx - x0, qy - y0
    i0 = (y0 * size + x0).long()
    idx = torch.cat([i0, i0 + 1, i0 + size, i0 + size + 1], dim=1)
    multi = weights.ndim == 3
    if multi:
        c = weights.shape[1]
        fx, fy = fx[:, None], fy[:, None]
        idx = (idx[:, None] + size * size * torch.arange(c, device=idx.device)[:, None]).reshape(n, -1)
    a, b = weights - fy * weights, fy * weights
    w = torch.cat([a - fx * a, fx * a, b - fx * b, fx * b], dim=-1)
    channels = weights.shape[1] if multi else 1
    img = torch.zeros(n, channels * size * size, dtype=w.dtype, device=w.device)
    img = img.scatter_add_(1, idx, w.reshape(n, -1)).reshape(n, channels, size, size)
    img = img[..., pad:pad + d, pad:pad + d]
    return img if multi else img[:, 0]
