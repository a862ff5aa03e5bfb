#!/usr/bin/env python
"""The first rung of HetACUMN's ab initio ladder: how fast can an encoder learn a pose from one
image when the true pose is given (issue "HetACUMN")?

    .venv/bin/python benchmarks/hetacumn_pose_rung.py --encoder mlp --images 80000 [--snr 1
        --max-shift 2 --lr 1e-3]

Fresh projections of the built-in object (D=32, 3 Å/px, CTF with 1-2.5 µm defocus, uniform
rotations, shifts uniform in +-``--max-shift`` px) at ``--snr``, normalised and windowed like the
training batches, stream through the encoder (batch 32, Adam) with the rotation supervised by
(1/9) ||R - R_pred||_F^2 (the CPP loss of Eq. 8 on real projections; every image seen once).
Printed: held-out median ||R - R_pred||_F^2 on 1000 other images (random: ~6.7) against images
seen. Encoders: ``resnet`` (HetACUMN's ResNet-18, width 16, small stem, flattened map, head 64),
``mlp`` (512 x 3), ``conv`` (three conv + max-pool stages without batch norm), and
``mlp_centred`` (a small MLP predicts the shift, supervised by L1; the image moved by it feeds the
MLP of the rotation).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from flexplugin.engine.geometry import so3  # noqa: E402
from flexplugin.engine.geometry.ctf import ctf_2d  # noqa: E402
from flexplugin.engine.geometry.fourier import (  # noqa: E402
    fft2_center,
    ifft2_center,
    shift_images,
    soft_circular_window,
)
from flexplugin.engine.methods.hetacumn_layers import MLPEncoder, ResNet18, _head  # noqa: E402
from flexplugin.engine.simulate import builtin_object, project_atoms  # noqa: E402

D, APIX = 32, 3.0


class Images:
    """Noisy, normalised, windowed projections of the built-in object with their poses."""

    def __init__(self, snr, max_shift):
        coords, self.weights = builtin_object()[:2]
        self.coords = coords * D
        self.max_shift = max_shift
        self.window = soft_circular_window(D)
        clean = self._clean(500, np.random.default_rng(1))[0]
        self.noise_sd = math.sqrt(float(clean.var(dim=(-2, -1)).mean()) / snr)
        self.norm = self.noise_sd * math.sqrt(1 + snr)

    def _clean(self, n, rng):
        rot = so3.random_rotations(n, rng)
        shift = rng.uniform(-self.max_shift, self.max_shift, (n, 2))
        img = project_atoms(np.repeat(self.coords[None], n, 0), self.weights, 1.0, rot, shift, D)
        dfu = rng.uniform(10000, 25000, n)
        ctf = np.stack([dfu, dfu - rng.uniform(0, 500, n), rng.uniform(0, 180, n), np.full(n, 300.0),
                        np.full(n, 2.7), np.full(n, 0.1), np.zeros(n), np.zeros(n)], 1)
        img = ifft2_center(fft2_center(img) * ctf_2d(D, APIX, ctf)).real
        return img, torch.as_tensor(rot, dtype=torch.float32), torch.as_tensor(shift, dtype=torch.float32)

    def __call__(self, n, rng):
        img, rot, shift = self._clean(n, rng)
        img = img + self.noise_sd * torch.as_tensor(rng.normal(size=tuple(img.shape)), dtype=torch.float32)
        return img / self.norm * self.window, rot, shift


class Encoder(nn.Module):
    """image -> (6D rotation, shift px or None)."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        if kind == "resnet":
            trunk = ResNet18(16, D, pool=False, stem="small")
        elif kind in ("mlp", "mlp_centred"):
            trunk = MLPEncoder(D, 512, 3)
        elif kind == "conv":
            w = 32
            trunk = nn.Sequential(nn.Unflatten(1, (1, D)), nn.Conv2d(1, w, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(w, 2 * w, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(2 * w, 4 * w, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
            trunk.n_features = 4 * w * (D // 8) ** 2
        else:
            raise ValueError(kind)
        self.trunk = trunk
        self.rot = _head(trunk.n_features, 64 if kind == "resnet" else 256, 6)
        self.shift = None
        if kind == "mlp_centred":
            self.shift = nn.Sequential(MLPEncoder(D, 256, 2), nn.Linear(256, 2))

    def forward(self, x):
        t = None
        if self.shift is not None:
            t = self.shift(x)
            x = shift_images(x, t.detach())          # the particle moved to the centre
        return self.rot(self.trunk(x)), t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoder", default="resnet", choices=["resnet", "mlp", "conv", "mlp_centred"])
    ap.add_argument("--images", type=int, default=80000)
    ap.add_argument("--snr", type=float, default=1.0)
    ap.add_argument("--max-shift", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    source = Images(a.snr, a.max_shift)
    test_x, test_rot, _ = source(1000, np.random.default_rng(2))
    net = Encoder(a.encoder)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    rng, seen, report, t0 = np.random.default_rng(3), 0, 2000, time.time()
    while seen < a.images:
        x, rot, shift = source(32, rng)
        out, t = net(x)
        loss = ((so3.sixd_to_matrix_torch(out) - rot) ** 2).sum((1, 2)).mean() / 9
        if t is not None:
            loss = loss + 0.5 * (t - shift).abs().sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += 32
        if seen >= report or seen >= a.images:
            net.eval()
            with torch.no_grad():
                err = ((so3.sixd_to_matrix_torch(net(test_x)[0]) - test_rot) ** 2).sum((1, 2)).median()
            net.train()
            print(json.dumps(dict(encoder=a.encoder, snr=a.snr, max_shift=a.max_shift, lr=a.lr, images=seen,
                                  rot_median=round(float(err), 3), seconds=round(time.time() - t0))), flush=True)
            report = int(report * 1.5)


if __name__ == "__main__":
    main()
