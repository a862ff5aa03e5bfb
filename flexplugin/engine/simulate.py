"""Heterogeneous synthetic particle sets with ground truth.

Three sources of conformations:
- the built-in pseudo-atomic object: a body, a knob and an arm that swings about a hinge
  (a 1D continuous motion, sampled in ``states`` states or continuously);
- ``volumes``: discrete/compositional states given as maps;
- ``structure``: an atomic model (one Gaussian per residue); each model of the file is a state,
  or, for a single model, its C-terminal half swings about a hinge like the built-in arm. Model
  1's centroid is put at the box centre; the model so placed in a map whose voxel 0 is at the
  origin (the box centre at D//2 * apix Å, as for a model fitted into a consensus map) is written
  as ``gt_model.pdb`` (``gt_model.cif`` when a PDB file cannot hold its chain ids, residue names
  or numbers), every state's C-alpha coordinates in that frame as ``gt_structures.npy``
  (states, R, 3) Å, and, for the hinge, the residues' domains (0 fixed, 1 moving) as
  ``gt_segments.npy``.

Image formation: random uniform rotations (RELION convention), projection, shift (the particle
sits at -origin, RELION's rlnOriginX/YAngst), CTF (RELION sign: protein bright), Gaussian noise
with SNR = var(signal) / var(noise).
"""
import json
import math
import os

import numpy as np
import torch

from ..constants import ROTATIONS_FILE, SHIFTS_FILE
from .geometry import so3
from .geometry.ctf import ctf_2d
from .geometry.fourier import fft2_center, ifft2_center, freqs_1d, shift_images
from .geometry.projection import project_fourier
from .io import mrc as mrcio
from .io.table import ParticleTable


def _rotation_about(axis, angle_rad):
    axis = np.asarray(axis, dtype=np.float64)
    return so3.axis_angle_to_matrix(axis / np.linalg.norm(axis) * angle_rad)


def hinge_states(coords, moving, hinge, axis, max_angle_deg, t):
    """Coordinates (len(t), M, 3): atoms in ``moving`` rotated about ``axis`` through ``hinge`` by
    t * max_angle_deg."""
    out = np.repeat(np.asarray(coords, dtype=np.float64)[None], len(t), axis=0)
    for i, ti in enumerate(t):
        r = _rotation_about(axis, np.deg2rad(max_angle_deg * ti))
        out[i, moving] = (coords[moving] - hinge) @ r.T + hinge
    return out


def builtin_object():
    """Pseudo-atoms of the built-in object in box fractions: (coords (M, 3), weights (M,),
    moving mask, hinge, axis). Fixed (independent of the simulation seed)."""
    rng = np.random.default_rng(20240531)

    def blob(center, radii, n):
        p = rng.normal(size=(n, 3))
        p /= np.linalg.norm(p, axis=1, keepdims=True)
        p *= rng.uniform(0, 1, size=(n, 1)) ** (1 / 3)
        return np.asarray(center) + p * np.asarray(radii)

    body = blob((-0.07, 0.0, 0.0), (0.15, 0.09, 0.08), 90)
    knob = blob((-0.12, -0.11, 0.07), (0.04, 0.04, 0.04), 15)
    arm = blob((0.13, 0.05, 0.0), (0.10, 0.04, 0.045), 40)
    coords = np.concatenate([body, knob, arm])
    weights = rng.uniform(0.6, 1.4, size=len(coords))
    moving = np.zeros(len(coords), bool)
    moving[-len(arm):] = True
    return coords, weights, moving, np.array([0.04, 0.05, 0.0]), np.array([0.0, 0.35, 1.0])


def render_volume(coords_px, weights, sigma_px, box):
    """Sum of 3D Gaussians (peak = weight) sampled on the centred grid: (box, box, box)."""
    c = torch.as_tensor(coords_px, dtype=torch.float64)
    f = freqs_1d(box, device=c.device, dtype=torch.float64) * box
    g = [torch.exp(-(f[None, :] - c[:, i:i + 1]) ** 2 / (2 * sigma_px ** 2)) for i in range(3)]
    w = torch.as_tensor(weights, dtype=torch.float64, device=c.device)[:, None]
    return torch.einsum("az,ay,ax->zyx", g[2] * w, g[1], g[0]).float()


def project_atoms(coords_px, weights, sigma_px, rotations, shifts_px, box, dtype=torch.float64):
    """Exact projections of the Gaussians: (n, box, box) for per-image coordinates (n, M, 3),
    computed in ``dtype`` (float64 for the simulator's ground truth), returned in float32."""
    c = torch.as_tensor(coords_px, dtype=dtype)
    f = freqs_1d(box, device=c.device, dtype=dtype) * box
    p = torch.einsum("nij,nmj->nmi", torch.as_tensor(rotations, dtype=dtype, device=c.device)[:, :2], c)
    p = p - torch.as_tensor(shifts_px, dtype=dtype, device=c.device)[:, None, :]  # particle at -origin
    w = torch.as_tensor(weights, dtype=dtype, device=c.device) * math.sqrt(2 * math.pi) * sigma_px

    def gauss(coord):
        # exponents floored at -40 (e^-40 ~ 4e-18 of the peak; products of two stay normal in
        # float32): no subnormal numbers, which are slow on CPUs
        g = f[None, None, :] - coord[..., None]
        return g.square_().mul_(-0.5 / sigma_px ** 2).clamp_min_(-40.0).exp_()
    return torch.bmm((gauss(p[..., 1]) * w[None, :, None]).transpose(1, 2), gauss(p[..., 0])).float()


class _AtomSource:
    """Conformations as pseudo-atoms moving along t in [0, 1] (or given per state)."""

    def __init__(self, state_coords_px, weights, sigma_px, box, motion=None, write_truth=None):
        self.state_coords = state_coords_px   # (K, M, 3)
        self.weights, self.sigma, self.box, self.motion = weights, sigma_px, box, motion
        self.write_truth = write_truth        # write_truth(out, state_coords): model files, if any

    def volumes(self):
        return [render_volume(c, self.weights, self.sigma, self.box) for c in self.state_coords]

    def images(self, rotations, shifts_px, labels, t):
        if self.motion is not None and t is not None:
            coords = self.motion(t)
        else:
            coords = self.state_coords[labels]
        return project_atoms(coords, self.weights, self.sigma, rotations, shifts_px, self.box)


class _VolumeSource:
    def __init__(self, vols):
        self.vols = vols

    def volumes(self):
        return self.vols

    def images(self, rotations, shifts_px, labels, t):
        out = torch.empty(len(labels), self.vols[0].shape[-1], self.vols[0].shape[-1])
        rot = torch.as_tensor(rotations, dtype=torch.float32)
        for k in np.unique(labels):
            sel = np.nonzero(labels == k)[0]
            proj = project_fourier(self.vols[k], rot[sel])
            out[sel] = shift_images(proj, -torch.as_tensor(shifts_px[sel])).float()
        return out


def _make_source(box, apix, states, volumes, structure, max_angle, continuous):
    if volumes:
        vols = []
        for p in volumes:
            v, _ = mrcio.read_mrc(p)
            if v.ndim != 3 or v.shape != (box, box, box):
                raise ValueError("%s: expected a %d^3 map, found shape %s" % (p, box, v.shape))
            vols.append(torch.as_tensor(v, dtype=torch.float32))
        return _VolumeSource(vols), len(vols)
    if structure:
        from .io.structure import read_structure
        st = read_structure(structure)
        center = st.coords[0].mean(axis=0)
        coords = (st.coords - center) / apix                     # px, centred on model 1
        sigma = max(1.0, 1.5 / apix * 1.5)                       # ~2.25 Å Gaussians, >= 1 px
        moving = None if len(coords) > 1 else np.arange(coords.shape[1]) >= coords.shape[1] // 2

        def write_truth(out, state_coords_px):
            # The model as placed in a map whose voxel 0 is at the origin (the box centre, voxel
            # D//2, at D//2 * apix Å), as a user's model fitted into the consensus map would be.
            from .io.structure import model_suffix, write_ca_model
            frame = (state_coords_px + box // 2) * apix
            write_ca_model(os.path.join(out, "gt_model" + model_suffix(st)), st,
                           (coords[0] + box // 2) * apix)
            np.save(os.path.join(out, "gt_structures.npy"), frame)   # (states, R, 3) Å
            if moving is not None:
                np.save(os.path.join(out, "gt_segments.npy"), moving.astype(np.int64))

        if len(coords) > 1:
            return _AtomSource(coords, st.electrons, sigma, box, write_truth=write_truth), len(coords)
        m = coords[0]
        hinge = m[len(m) // 2]
        axis = np.cross(m[moving].mean(0) - hinge, m[~moving].mean(0) - hinge) + 1e-6
        motion = lambda t: hinge_states(m, moving, hinge, axis, max_angle, t)  # noqa: E731
        return _AtomSource(motion(_state_t(states)), st.electrons, sigma, box,
                           motion if continuous else None, write_truth), states
    coords, weights, moving, hinge, axis = builtin_object()
    coords, hinge = coords * box, hinge * box
    motion = lambda t: hinge_states(coords, moving, hinge, axis, max_angle, t)  # noqa: E731
    return _AtomSource(motion(_state_t(states)), weights, 0.025 * box, box,
                       motion if continuous else None), states


def _state_t(states):
    return np.linspace(0.0, 1.0, states) if states > 1 else np.zeros(1)


def simulate(out, n, box, apix, snr, seed=0, states=4, volumes=None, structure=None,
             continuous=False, max_angle=60.0, defocus=(10000.0, 25000.0), astigmatism=500.0,
             voltage=300.0, cs=2.7, amp_contrast=0.1, max_shift=None, hidden_bfactor=None,
             chunk=512, log=print):
    """Write a synthetic particle set to ``out`` and return its ParticleTable.

    ``hidden_bfactor`` (b_min, b_max): the images are blurred by a B-factor envelope rising
    linearly with the defocus, from b_min (Å^2) at ``defocus[0]`` to b_max at ``defocus[1]``,
    which the particle file does not record (its B stays 0): a defocus-dependent loss of contrast
    that the CTF model does not know, as the beam's partial spatial coherence gives."""
    from .io import write_star, write_cs
    os.makedirs(os.path.join(out, "gt_volumes"), exist_ok=True)
    rng = np.random.default_rng(seed)
    source, k = _make_source(box, apix, states, volumes, structure, max_angle, continuous)
    t = rng.uniform(0, 1, n) if continuous and k > 1 else None
    labels = (np.minimum((t * k).astype(int), k - 1) if t is not None else rng.integers(0, k, n))
    z_true = t if t is not None else _state_t(k)[labels]
    rotations = so3.random_rotations(n, rng)
    max_shift = box / 16 if max_shift is None else max_shift
    shifts_px = rng.uniform(-max_shift, max_shift, (n, 2))
    dfu = rng.uniform(*defocus, n)
    ctf = np.stack([dfu, dfu - rng.uniform(0, astigmatism, n), rng.uniform(0, 180, n),
                    np.full(n, voltage), np.full(n, cs), np.full(n, amp_contrast),
                    np.zeros(n), np.zeros(n)], axis=1)

    ctf_images = ctf
    if hidden_bfactor is not None:
        frac = (dfu - defocus[0]) / max(defocus[1] - defocus[0], 1e-9)
        ctf_images = ctf.copy()
        ctf_images[:, 7] = hidden_bfactor[0] + frac * (hidden_bfactor[1] - hidden_bfactor[0])

    def clean(sel):
        img = source.images(rotations[sel], shifts_px[sel], labels[sel], None if t is None else t[sel])
        return ifft2_center(fft2_center(img) * ctf_2d(box, apix, ctf_images[sel])).real

    # Noise level from the mean signal variance over (up to) 1000 images.
    probe = np.arange(min(n, 1000))
    sig_var = float(clean(probe).var(dim=(-2, -1)).mean())
    noise_sd = math.sqrt(sig_var / snr) if snr > 0 else 0.0
    stack = os.path.join(out, "particles.mrcs")
    noise_rng = torch.Generator().manual_seed(seed)
    with mrcio.new_stack(stack, n, box, apix) as data:
        for a in range(0, n, chunk):
            sel = np.arange(a, min(n, a + chunk))
            img = clean(sel)
            img = img + noise_sd * torch.randn(img.shape, generator=noise_rng)
            data[sel] = img.numpy()
            log("simulate: %d/%d images" % (sel[-1] + 1, n))
    for i, v in enumerate(source.volumes()):
        mrcio.write_mrc(os.path.join(out, "gt_volumes", "state_%02d.mrc" % i), v.numpy(), apix)
    if getattr(source, "write_truth", None):
        source.write_truth(out, source.state_coords)
    table = ParticleTable(stacks=[os.path.abspath(stack)], stack_id=np.zeros(n, int), index=np.arange(n),
                          apix=apix, box=box, rotations=rotations, shifts_A=shifts_px * apix, ctf=ctf,
                          optics_group=np.ones(n, int))
    write_star(os.path.join(out, "particles.star"), table)
    write_cs(os.path.join(out, "particles.cs"), table)
    np.save(os.path.join(out, "labels.npy"), labels)
    np.save(os.path.join(out, "z_true.npy"), z_true)
    np.save(os.path.join(out, ROTATIONS_FILE), rotations)
    np.save(os.path.join(out, SHIFTS_FILE), shifts_px * apix)
    with open(os.path.join(out, "simulation.json"), "w") as f:
        json.dump(dict(n=n, box=box, apix=apix, snr=snr, seed=seed, states=k, continuous=continuous,
                       volumes=volumes, structure=structure, max_angle=max_angle, defocus=list(defocus),
                       voltage=voltage, cs=cs, amp_contrast=amp_contrast, max_shift_px=max_shift,
                       hidden_bfactor=None if hidden_bfactor is None else list(hidden_bfactor),
                       noise_sd=noise_sd, signal_var=sig_var), f, indent=1)
    log("simulate: wrote %s (%d particles, %d states, box %d, %.3f Å/px, SNR %g)"
        % (out, n, k, box, apix, snr))
    return table
