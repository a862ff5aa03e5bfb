#!/usr/bin/env python
"""HetSIREN on a simulated 1D motion, optionally against our cryoDRGN (issue "HetSIREN").

    .venv/bin/python benchmarks/hetsiren_motion.py [--n 5000 --box 32 --states 10 --snr 0.1
        --epochs 20 --zdim 4 [--lr 1e-4 --batch-size 8] --threads 1 --with-cryodrgn
        --out benchmarks/out/hetsiren_motion]

1. simulates the built-in hinge object in ``--states`` states (CTF, shifts, known poses) with
   ``flexplugin simulate``: OUT/data;
2. trains ``flexplugin train hetsiren`` on it (``--hetsiren-args`` passes more options, e.g.
   "--precision fp32 --omega0 1"), and with ``--with-cryodrgn`` our cryoDRGN on the same data
   with the same epochs, seed and threads (``--cryodrgn-args`` for its options);
3. reports for each: |Spearman(PC1 of z, state)| and the FSC=0.5 resolution of the map decoded
   (``flexplugin decode``) at each state's median z against that state's ground-truth map, and
   the training time. The issue's targets: |Spearman| >= 0.95 and HetSIREN's maps at least as
   good (FSC=0.5 in Å at most) as cryoDRGN's.
Writes OUT/results.json.
"""
import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from state_maps import median_z, state_resolutions, state_spearman  # noqa: E402
from flexplugin.engine.analysis.poses import spearman_pc1  # noqa: E402
from flexplugin.engine.io import read_particles  # noqa: E402
from flexplugin.engine.io.mrc import read_mrc  # noqa: E402


def cli(*args, env=None):
    cmd = [sys.executable, "-m", "flexplugin.engine.cli"] + [str(a) for a in args]
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def train_and_score(method, extra, a, data, env):
    run = os.path.join(a.out, method)
    t0 = time.time()
    cli("train", method, "--particles", os.path.join(data, "particles.star"), "--out", run,
        "--epochs", a.epochs, "--seed", a.seed, "--threads", a.threads, "--log-every", 0,
        "--zdim", a.zdim, *extra, env=env)
    wall = time.time() - t0
    with open(os.path.join(run, "metrics.json")) as f:
        seconds = sum(e["seconds"] for e in json.load(f)["epochs"])
    z = np.load(os.path.join(run, "z.npy"))
    labels = np.load(os.path.join(data, "labels.npy"))
    zs = os.path.join(a.out, method + "_state_z.txt")
    np.savetxt(zs, median_z(z, labels, a.states))
    vols = os.path.join(a.out, method + "_states")
    cli("decode", "--model", run, "--z-file", zs, "--out", vols, env=env)
    res = state_resolutions(vols, data, a.apix)
    defocus = read_particles(os.path.join(data, "particles.star")).ctf[:, :2].mean(1)
    r = dict(spearman_pc1=state_spearman(z, data), defocus_spearman_pc1=spearman_pc1(z, defocus),
             fsc05_A_per_state=res,
             fsc05_A_mean=float(np.mean(res)), train_seconds=seconds, wall_seconds=wall,
             images_per_s=a.n * a.epochs / seconds, args=extra)
    print("%-9s |Spearman(PC1 z, state)| %.3f  (defocus %.3f)  FSC=0.5 vs GT (mean over states) "
          "%.2f Å  [%s]  train %.0f s" % (method, r["spearman_pc1"], r["defocus_spearman_pc1"],
                                          r["fsc05_A_mean"],
                            " ".join("%.1f" % x for x in res), seconds), flush=True)
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--box", type=int, default=32)
    ap.add_argument("--apix", type=float, default=3.0)
    ap.add_argument("--states", type=int, default=10)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--zdim", type=int, default=4)
    ap.add_argument("--lr", type=float, help="HetSIREN's learning rate (default: the method's)")
    ap.add_argument("--batch-size", type=int, help="HetSIREN's batch size (default: the method's)")
    ap.add_argument("--hetsiren-args", default="", help="more `train hetsiren` options (one string)")
    ap.add_argument("--with-cryodrgn", action="store_true", help="also train our cryoDRGN")
    ap.add_argument("--cryodrgn-args", default="--lr 1e-4 --batch-size 8 --enc-dim 128 --enc-layers 3 "
                    "--dec-dim 128 --dec-layers 3 --pe geom_lowf",
                    help="`train cryodrgn` options (one string)")
    ap.add_argument("--focus", action="store_true",
                    help="HetSIREN with a mask around the moving arm (a soft sphere) and the "
                         "particles' reconstruction as the reference; also reports the largest "
                         "change outside the mask relative to the reference's maximum")
    ap.add_argument("--defocus-range", nargs=2, type=float, metavar=("MIN", "MAX"),
                    help="simulated defocus range in Å (e.g. 5000 40000: a wide spread, for "
                         "--hetsiren-args --decouple); |Spearman(PC1 of z, defocus)| is reported "
                         "for every run")
    ap.add_argument("--hidden-bfactor", nargs=2, type=float, metavar=("AT_MIN", "AT_MAX"),
                    help="images blurred by a B-factor (Å^2) rising with the defocus that the "
                         "particle file does not record (`flexplugin simulate --hidden-bfactor`): "
                         "a defocus-dependent effect for z to absorb, for --decouple")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "hetsiren_motion"))
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    data = os.path.join(a.out, "data")
    cli("simulate", "--out", data, "--n", a.n, "--box", a.box, "--apix", a.apix, "--snr", a.snr,
        "--seed", a.seed, "--states", a.states,
        *(["--defocus-min", a.defocus_range[0], "--defocus-max", a.defocus_range[1]]
          if a.defocus_range else []),
        *(["--hidden-bfactor", *a.hidden_bfactor] if a.hidden_bfactor else []), env=env)
    results = {"config": vars(a)}
    focus = []
    if a.focus:
        ref, mask = os.path.join(a.out, "reference.mrc"), os.path.join(a.out, "mask.mrc")
        cli("reconstruct", "--particles", os.path.join(data, "particles.star"), "--out", ref, env=env)
        # A sphere around the built-in object's swinging arm (centre and reach of its atoms over
        # the states, in Å from the box centre).
        cli("mask", "--out", mask, "--sphere", "--box", a.box, "--apix", a.apix,
            "--center", "10.8,8.6,-1.1", "--radius", 16, "--soft", 6, env=env)
        focus = ["--mask", mask, "--reference", ref]
    results["hetsiren"] = train_and_score(
        "hetsiren", (["--lr", a.lr] if a.lr else []) + (["--batch-size", a.batch_size] if a.batch_size else [])
        + shlex.split(a.hetsiren_args) + focus,
        a, data, env)
    if a.focus:
        m, v0 = read_mrc(mask)[0], read_mrc(ref)[0]
        vols = sorted(glob.glob(os.path.join(a.out, "hetsiren_states", "*.mrc")))
        dev = max(float(np.abs(read_mrc(v)[0] - v0)[m == 0].max()) for v in vols) / float(np.abs(v0).max())
        results["hetsiren"]["outside_mask_max_rel"] = dev
        print("focus: outside the mask max |map - reference| = %.2g of max|reference|" % dev, flush=True)
    if a.with_cryodrgn:
        results["cryodrgn"] = train_and_score("cryodrgn", shlex.split(a.cryodrgn_args), a, data, env)
        h, c = results["hetsiren"], results["cryodrgn"]
        print("HetSIREN vs cryoDRGN: Spearman %.3f vs %.3f; mean FSC=0.5 %.2f vs %.2f Å (lower is better)"
              % (h["spearman_pc1"], c["spearman_pc1"], h["fsc05_A_mean"], c["fsc05_A_mean"]))
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
