#!/usr/bin/env python
"""HetACUMN's ab initio learning curve: pose error against images seen (issue "HetACUMN").

    .venv/bin/python benchmarks/hetacumn_abinitio.py [--n 3000 --snr 1 --epochs 20 --threads 1
        --variants default pe_2pi imagenet_stem no_cpp lr_3e-4 --out benchmarks/out/hetacumn_abinitio]

A homogeneous set (the built-in hinge object, D=32, 3 Å/px, CTF, shifts up to a few pixels) is
simulated once with ``flexplugin simulate``; each variant trains ``flexplugin train hetacumn``
(zdim 0, the star's poses ignored, the CPU-sized architecture of ``--base-args``) keeping every
epoch's checkpoint; each checkpoint then encodes the whole set and its poses are scored against
the truth: median ||R - R_true||_F^2 after the global rotation (and hand) that aligns them best
(random poses: ~6.7), and the median shift error in px^2. Variants (options added to the base):

- ``default``: the method's defaults;
- ``pe_2pi``: random Fourier features sin(2 pi B k), B ~ N(0, (0.5 D/2)^2) (``--pe-sigma pi``);
- ``imagenet_stem``: the ResNet's ImageNet stem (7x7 stride 2 and max pool) at D=32;
- ``no_cpp``: without the auxiliary pose task;
- ``mlp_encoder``: the MLP encoder (``--encoder mlp``) instead of the ResNet;
- ``uniformity``: the uniform-orientation prior on the predicted rotations at weight 1;
- ``lr_3e-4``, ``lr_3e-3``: other learning rates.

Appends one row per (variant, epoch) to OUT/curve.jsonl and prints the table. The issue's target:
aligned median ||dR||_F^2 < 1.0 within one hour of one core.
"""
import argparse
import glob
import json
import math
import os
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

BOX, APIX = 32, 3.0
VARIANTS = {
    "default": [],
    "pe_2pi": ["--pe-sigma", str(0.5 * 2 * math.pi)],
    "imagenet_stem": ["--enc-stem", "imagenet"],
    "no_cpp": ["--no-cpp"],
    "mlp_encoder": ["--encoder", "mlp"],
    "uniformity": ["--pose-uniformity", "1"],
    "lr_3e-4": ["--lr", "3e-4"],
    "lr_3e-3": ["--lr", "3e-3"],
}


def cli(*args, env=None):
    cmd = [sys.executable, "-m", "flexplugin.engine.cli"] + [str(a) for a in args]
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def curve(run, data, threads, device="cpu", every=1):
    """[(epoch, images seen, training seconds, pose errors, and |Spearman(PC1 of z, state)| when
    the model has a latent)] of the kept checkpoints of ``run`` (every ``every``-th and the last)."""
    import torch

    from flexplugin.engine.analysis.poses import pose_errors, spearman_pc1
    from flexplugin.engine.methods import METHODS
    from flexplugin.engine.train import dataset_for, encode_dataset
    torch.set_num_threads(threads)
    with open(os.path.join(run, "metrics.json")) as f:
        epochs = json.load(f)["epochs"]
    truth_r = np.load(os.path.join(data, "rotations.npy"))
    truth_t = np.load(os.path.join(data, "shifts_A.npy")) / APIX
    rows, seen, seconds = [], 0, 0.0
    paths = sorted(glob.glob(os.path.join(run, "checkpoints", "epoch_*.pt")))
    for i, (path, m) in enumerate(zip(paths, epochs)):
        seen += round(m["images_per_s"] * m["seconds"])
        seconds += m["seconds"]
        if (i + 1) % every and i + 1 < len(paths):
            continue
        ck = torch.load(path, map_location="cpu", weights_only=True)
        model = METHODS["hetacumn"].from_checkpoint(ck["model"]).to(device)
        enc = encode_dataset(model, dataset_for(model, os.path.join(data, "particles.star")),
                             device=device)
        e = pose_errors(enc["rotations"], truth_r, enc["shifts_A"] / APIX, truth_t)
        row = dict(epoch=int(os.path.basename(path)[6:9]), images=seen, seconds=round(seconds),
                   rot_median=e["rot_median"], angle_median_deg=e["angle_median_deg"],
                   shift_median_px2=e["shift_median"], mirrored=e["mirrored"])
        if enc["z"].shape[1]:
            row["spearman_pc1"] = spearman_pc1(enc["z"], np.load(os.path.join(data, "z_true.npy")))
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--snr", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--base-args", default="--zdim 0 --enc-dim 16 --head-dim 64 --dec-dim 128 "
                    "--dec-layers 3 --lr 1e-3 --batch-size 32 --precision fp32",
                    help="`train hetacumn` options of every variant (one string)")
    ap.add_argument("--train-args", default="", help="options added to every variant (one string)")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "hetacumn_abinitio"))
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    data = os.path.join(a.out, "data")
    if not os.path.exists(os.path.join(data, "rotations.npy")):
        cli("simulate", "--out", data, "--n", a.n, "--box", BOX, "--apix", APIX, "--snr", a.snr,
            "--seed", a.seed, "--states", 1, env=env)
    for name in a.variants:
        run = os.path.join(a.out, name)
        t0 = time.time()
        cli("train", "hetacumn", "--particles", os.path.join(data, "particles.star"), "--out", run,
            "--epochs", a.epochs, "--seed", a.seed, "--threads", a.threads, "--log-every", 0,
            "--keep-epochs", *shlex.split(a.base_args), *shlex.split(a.train_args), *VARIANTS[name], env=env)
        print("%s: trained in %.0f s" % (name, time.time() - t0), flush=True)
        with open(os.path.join(a.out, "curve.jsonl"), "a") as f:
            for row in curve(run, data, a.threads):
                row.update(variant=name, n=a.n, snr=a.snr, seed=a.seed, base_args=a.base_args)
                f.write(json.dumps(row) + "\n")
                print("%-14s epoch %3d  images %7d  %5d s  median ||dR||^2 %.3f (%.1f deg)  "
                      "shift %.2f px^2" % (name, row["epoch"], row["images"], row["seconds"],
                                          row["rot_median"], row["angle_median_deg"],
                                          row["shift_median_px2"]), flush=True)


if __name__ == "__main__":
    main()
