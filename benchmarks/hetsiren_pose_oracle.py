#!/usr/bin/env python
"""How well can HetSIREN's local pose refinement do at best? (issue "HetSIREN", pose refinement)

    .venv/bin/python benchmarks/hetsiren_pose_oracle.py [--n 300 --box 32 --snr 1 --steps 10
        --sigma-deg 3 --sigma-px 1 --out benchmarks/out/hetsiren_pose_oracle]

Simulates one state of the built-in hinge (``flexplugin simulate``), perturbs every rotation by
``--perturb-deg`` about a random axis (the tests' perturbation), and refines the poses by the
method's own Gauss-Newton fit (``--steps`` steps, prior ``--sigma-deg`` / ``--sigma-px``) against
the *ground-truth* map given as the reference, i.e. with a perfect map. Reports the median angular
error after refinement, started from the true and from the perturbed poses. With a prior as wide
as 100 degrees the fit is the maximum-likelihood pose; at a very high SNR what is left is the
projector's mismatch with the simulator. No learned map can beat these numbers on the same data.
With ``--train-epochs N`` the method also learns the map itself from the perturbed poses (zdim 0,
``--refine-poses``, lr 3e-3: the tests' setting) and the poses it writes are scored the same way.
"""
import argparse
import dataclasses
import os
import shlex
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from flexplugin.engine.data import ParticleDataset  # noqa: E402
from flexplugin.engine.geometry import so3  # noqa: E402
from flexplugin.engine.io import read_particles  # noqa: E402
from flexplugin.engine.io.star import write_star  # noqa: E402
from flexplugin.engine.methods import METHODS  # noqa: E402


def cli(*args):
    subprocess.run([sys.executable, "-m", "flexplugin.engine.cli"] + [str(a) for a in args],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--box", type=int, default=32)
    ap.add_argument("--snr", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--perturb-deg", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--sigma-deg", type=float, nargs="*", default=[3.0, 100.0],
                    help="prior widths to try (100: maximum likelihood; none: no oracle)")
    ap.add_argument("--sigma-px", type=float, default=1.0)
    ap.add_argument("--train-epochs", type=int, default=0,
                    help="also train HetSIREN's map from the perturbed poses for this many epochs")
    ap.add_argument("--train-args", default="", help="more `train hetsiren` options (one string)")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "hetsiren_pose_oracle"))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = os.path.join(a.out, "snr%g_box%d" % (a.snr, a.box))
    cli("simulate", "--out", data, "--n", a.n, "--box", a.box, "--apix", 3.0, "--snr", a.snr,
        "--seed", a.seed, "--states", 1)
    table = read_particles(os.path.join(data, "particles.star"))
    rng = np.random.default_rng(7)
    axes = rng.normal(size=(len(table), 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    delta = so3.axis_angle_to_matrix(axes * np.deg2rad(a.perturb_deg))
    perturbed = dataclasses.replace(table, rotations=delta @ table.rotations)
    write_star(os.path.join(data, "perturbed.star"), perturbed)
    if a.sigma_deg:
        oracle(a, data, table, perturbed)
    if a.train_epochs:
        learned(a, data, table, perturbed)


def oracle(a, data, table, perturbed):
    # A model with the ground-truth map as its reference (zdim 0: the map is the reference).
    run = os.path.join(data, "oracle")
    cli("train", "hetsiren", "--particles", os.path.join(data, "perturbed.star"), "--out", run,
        "--epochs", 1, "--zdim", 0, "--refine-poses", "--threads", 1, "--log-every", 0,
        "--reference", os.path.join(data, "gt_volumes", "state_00.mrc"))
    ck = torch.load(os.path.join(run, "checkpoint.pt"), weights_only=True)
    model = METHODS["hetsiren"].from_checkpoint(ck["model"]).eval()
    info = model.data_info
    model.config.pose_sigma_px = a.sigma_px
    for sigma in a.sigma_deg:
        model.config.pose_sigma_deg = sigma
        for name, t in (("true", table), ("perturbed", perturbed)):
            ds = ParticleDataset(t, box=info.box, invert=info.invert, window=info.window, scale=info.scale)
            b = ds[np.arange(len(t))]
            with torch.no_grad():
                vals = model._volume(torch.zeros(len(t), 0))
                w, _ = model._refine_local(b["images"].float(), vals, b["rotations"], b["shifts_px"],
                                           b.get("ctf"), a.steps)
            refined = so3.axis_angle_to_matrix(w.double().numpy()) @ t.rotations
            before = np.median(so3.rotation_angle_deg(t.rotations, table.rotations))
            after = np.median(so3.rotation_angle_deg(refined, table.rotations))
            print("D=%d SNR %g, prior %g deg / %g px, %d steps, from the %s poses: median error "
                  "%.2f -> %.2f deg" % (a.box, a.snr, sigma, a.sigma_px, a.steps, name, before, after),
                  flush=True)



def learned(a, data, table, perturbed):
    run = os.path.join(data, "learned")
    cli("train", "hetsiren", "--particles", os.path.join(data, "perturbed.star"), "--out", run,
        "--epochs", a.train_epochs, "--zdim", 0, "--refine-poses", "--lr", 3e-3,
        "--threads", 1, "--log-every", 0, *shlex.split(a.train_args))
    rot = np.load(os.path.join(run, "rotations.npy"))
    print("D=%d SNR %g, the map learned in %d epochs [%s]: median error %.2f -> %.2f deg"
          % (a.box, a.snr, a.train_epochs, a.train_args or "the method's defaults",
             np.median(so3.rotation_angle_deg(perturbed.rotations, table.rotations)),
             np.median(so3.rotation_angle_deg(rot, table.rotations))), flush=True)


if __name__ == "__main__":
    main()
