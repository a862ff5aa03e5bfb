"""The CTF against independent derivations of the published formula."""
import math

import numpy as np
import torch

from flexplugin.engine.geometry.ctf import ctf_2d, ctf_from_freqs, electron_wavelength


def _textbook(sx, sy, du, dv, ang_deg, kv, cs_mm, w, phase_deg=0.0, b=0.0):
    """CTF = sin(chi + arcsin(w)) * exp(-B s^2 / 4), chi = pi*lam*df*s^2 - pi/2*Cs*lam^3*s^4 + phase,
    written from scratch in numpy (Å units; df along the azimuth of the ellipse)."""
    v = kv * 1e3
    h, m0, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 2.99792458e8
    lam = h / math.sqrt(2 * m0 * e * v * (1 + e * v / (2 * m0 * c ** 2))) * 1e10   # Å, from constants
    s2 = sx ** 2 + sy ** 2
    az = np.arctan2(sy, sx)
    df = du * np.cos(az - np.deg2rad(ang_deg)) ** 2 + dv * np.sin(az - np.deg2rad(ang_deg)) ** 2
    chi = np.pi * lam * df * s2 - np.pi / 2 * cs_mm * 1e7 * lam ** 3 * s2 ** 2 + np.deg2rad(phase_deg)
    return np.sin(chi + np.arcsin(w)) * np.exp(-b * s2 / 4)


def test_wavelength_from_physical_constants():
    assert abs(electron_wavelength(300.0) - 0.019687) < 2e-6
    assert abs(electron_wavelength(200.0) - 0.025079) < 2e-6


def test_astigmatic_ctf_matches_textbook_formula():
    rng = np.random.default_rng(1)
    s = torch.linspace(-0.24, 0.24, 41, dtype=torch.float64)
    sy, sx = torch.meshgrid(s, s, indexing="ij")
    for _ in range(5):
        du = rng.uniform(8000, 30000)
        dv = du - rng.uniform(0, 2000)
        ang, w, ps, b = rng.uniform(0, 180), rng.uniform(0.05, 0.2), rng.uniform(0, 90), rng.uniform(0, 80)
        ours = ctf_from_freqs(sx, sy, du, dv, ang, 300.0, 2.7, w, ps, b).numpy()
        ref = _textbook(sx.numpy(), sy.numpy(), du, dv, ang, 300.0, 2.7, w, ps, b)
        assert np.abs(ours - ref).max() < 2e-3


def test_relion_and_cryodrgn_sign_conventions():
    """RELION: -sin(K1*deltaf*u2 + K2*u4 - K5 - atan(Q/sqrt(1-Q^2))) with deltaf = -defocus;
    cryoDRGN: sqrt(1-w^2) sin(g) - w cos(g) is its negative. Ours is RELION's: positive at low s."""
    lam = electron_wavelength(300.0)
    s = torch.linspace(0.001, 0.3, 300, dtype=torch.float64)
    du, dv, ang, w, ps = 15000.0, 14000.0, 30.0, 0.1, 20.0
    az = math.radians(50)
    sx, sy = s * math.cos(az), s * math.sin(az)
    ours = ctf_from_freqs(sx, sy, du, dv, ang, 300.0, 2.7, w, ps).numpy()
    deltaf = -(0.5 * (du + dv) + 0.5 * (du - dv) * math.cos(2 * (az - math.radians(ang))))
    k1, k2 = math.pi * lam, math.pi / 2 * 2.7e7 * lam ** 3
    u2 = s.numpy() ** 2
    relion = -np.sin(k1 * deltaf * u2 + k2 * u2 ** 2 - math.radians(ps) - math.atan(w / math.sqrt(1 - w * w)))
    assert np.allclose(ours, relion, atol=1e-9)
    g = 2 * math.pi * (-0.5 * -deltaf * lam * u2 + 0.25 * 2.7e7 * lam ** 3 * u2 ** 2) - math.radians(ps)
    cryodrgn = math.sqrt(1 - w * w) * np.sin(g) - w * np.cos(g)
    assert np.allclose(ours, -cryodrgn, atol=1e-9)
    assert ours[0] > 0


def test_first_zero_and_astigmatism_axis():
    """Without Cs and amplitude contrast the first zero is at s = 1/sqrt(lambda * df), and it is
    reached first along the axis of the smaller defocus."""
    lam = electron_wavelength(300.0)
    du, dv, ang = 20000.0, 16000.0, 35.0
    for df, az in ((du, ang), (dv, ang + 90)):
        s0 = 1 / math.sqrt(lam * df)
        sx = torch.tensor([s0 * math.cos(math.radians(az))], dtype=torch.float64)
        sy = torch.tensor([s0 * math.sin(math.radians(az))], dtype=torch.float64)
        assert abs(float(ctf_from_freqs(sx, sy, du, dv, ang, 300.0, 0.0, 0.0))) < 1e-9


def test_ctf_images_per_particle():
    params = np.array([[15000, 14000, 10, 300, 2.7, 0.1, 0, 0], [25000, 25000, 0, 200, 2.0, 0.07, 90, 50]])
    img = ctf_2d(64, 2.0, params, dtype=torch.float64)
    assert img.shape == (2, 64, 64)
    assert np.allclose(img[:, 32, 32].numpy(), [0.1, math.sin(math.pi / 2 + math.asin(0.07))])
    s = torch.arange(-32, 32, dtype=torch.float64) / 128.0
    row = ctf_from_freqs(s, torch.zeros_like(s), 25000, 25000, 0, 200, 2.0, 0.07, 90, 50)
    assert torch.allclose(img[1, 32], row)
