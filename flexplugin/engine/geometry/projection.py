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
        out.append(splat_2d(p, w.expand(p.shape[0], -1), d))
    return torch.cat(out)


def splat_2d(points, weights, d):
    """Bilinear splat of (n, M, 2) xy points (pixel indices) with (n, M) weights into (n, d, d)."""
    n = points.shape[0]
    x0 = torch.floor(points[..., 0])
    y0 = torch.floor(points[..., 1])
    fx = points[..., 0] - x0
    fy = points[..., 1] - y0
    x0, y0 = x0.long(), y0.long()
    img = torch.zeros(n, d * d, dtype=weights.dtype, device=weights.device)
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                        (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < d) & (yi >= 0) & (yi < d)
        idx = torch.where(ok, yi * d + xi, 0)
        img.scatter_add_(1, idx, torch.where(ok, wgt * weights, 0))
    return img.reshape(n, d, d)
