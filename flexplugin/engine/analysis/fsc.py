"""Fourier shell correlation and the resolution where it crosses a threshold."""
import numpy as np
import torch

from ..geometry.fourier import fft3_center, radial_index


def fsc(vol_a, vol_b):
    """FSC between two (D, D, D) maps. Returns (freqs in cycles/pixel for shells 0..D/2, curve)."""
    a = fft3_center(torch.as_tensor(np.asarray(vol_a), dtype=torch.float64))
    b = fft3_center(torch.as_tensor(np.asarray(vol_b), dtype=torch.float64))
    d = a.shape[-1]
    shell = radial_index(d, 3).reshape(-1)
    n = d // 2 + 1
    keep = shell < n
    shell = shell[keep]

    def acc(x):
        return torch.zeros(n, dtype=torch.float64).index_add_(0, shell, x.reshape(-1)[keep])
    num = acc((a * b.conj()).real)
    den = torch.sqrt(acc(a.abs() ** 2) * acc(b.abs() ** 2))
    curve = torch.where(den > 0, num / den.clamp_min(1e-30), torch.zeros_like(num))
    return np.arange(n) / d, curve.numpy()


def resolution_at(freqs, curve, threshold, apix):
    """Resolution in Å where the curve first drops below ``threshold`` (linear interpolation
    between shells), ignoring shell 0; Nyquist (2 * apix) if it never does."""
    freqs, curve = np.asarray(freqs), np.asarray(curve)
    for i in range(1, len(curve)):
        if curve[i] < threshold and i == 1:
            return float(apix / freqs[1])
        if curve[i] < threshold:
            f0, f1, c0, c1 = freqs[i - 1], freqs[i], curve[i - 1], curve[i]
            f = f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0) if c0 != c1 else f1
            return float(apix / max(f, 1e-12))
    return float(apix / freqs[-1])


def write_fsc(path, freqs, curve, apix):
    """A two-column text file: resolution (1/Å) and FSC."""
    from ..io.mrc import atomic_path
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savetxt(f, np.stack([np.asarray(freqs) / apix, curve], axis=1), fmt="%.6f",
                   header="frequency_1/A fsc")
