#!/usr/bin/env python
"""Landscape analysis on a simulated 3-state set: k-means classes vs the truth, class maps vs a
homogeneous reconstruct of each state's true particles.

    .venv/bin/python benchmarks/landscape_classes.py [--n 3000 --box 64 --apix 3 --snr 0.1 --seed 0
        --epochs 16 --zdim 2 --enc-dim 128 --enc-layers 3 --dec-dim 128 --dec-layers 3 --lr 1e-3
        --batch-size 16 --reduction umap --threads 1 --out benchmarks/out/landscape]

Target: the k-means classes of ``flexplugin analyze`` match the true states (adjusted Rand index
>= 0.95) and each class map reaches FSC = 0.5 with its ground truth as far as (at an equal or
smaller Å number than) a homogeneous reconstruct of that state's true particles.

1. simulates 3 discrete states of the built-in hinge object (0, 45, 90 degrees; CTF, shifts, known
   poses): OUT/data (particles.star, labels.npy, z_true.npy, gt_volumes/state_0K.mrc);
2. trains cryoDRGN (``flexplugin train cryodrgn``) on it: OUT/train (checkpoint, z.npy);
3. runs the landscape analysis with the arguments the Scipion protocol ProtFlexLandscape passes
   (``--ndim 2 --kmeans 3 --pcs 2 --traversal-points 10 --seed 0``, ``--umap`` for its default
   UMAP reduction; k-means runs on z either way): OUT/analysis (kmeans_labels.npy, the class maps
   kmeans/vol_00K.mrc decoded at the particle nearest each centre);
4. ARI of the k-means labels vs labels.npy; each class is matched to its majority true state;
5. FSC = 0.5 resolution (unmasked) of each class map vs that state's ground truth, and of
   ``flexplugin reconstruct`` of that state's true particles (OUT/recon/state_0K.star/.mrc) vs
   the same ground truth.
Prints a table and writes OUT/results.json. ``--reuse-train`` takes OUT/data and OUT/train from
an earlier run with the same settings (the training is the slow part).

Measured (shared 2-core CPU, one thread for everything; benchmarks/RESULTS.md): --n 3000 --box 64
--snr 0.1 --epochs 45, the other settings the defaults: ARI 0.946 (classes 96-99% pure, each a
distinct state); class maps FSC=0.5 at 11.82 / 11.69 / 11.90 Å against the reconstructs of the true
particles at 13.40 / 13.35 / 13.37 Å (every class map reaches further); 1242 s in all.
The same with --zdim 8 (OUT benchmarks/out/landscape_z8, same data): ARI 0.963 (target met; classes
98-100% pure); class maps of states 0 / 1 / 2 at 12.44 / 12.00 / 11.92 Å against the reconstructs at
13.37 / 13.40 / 13.35 Å (every class map reaches further); 91 img/s on a busier machine, 1563 s.
"""
import argparse
import json
import os
import sys
import time
from collections import Counter

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from flexplugin.engine.analysis.fsc import fsc, resolution_at  # noqa: E402
from flexplugin.engine.io import read_mrc, read_particles, write_star  # noqa: E402
from reconstruct_vs_cryodrgn import run  # noqa: E402
from train_vs_cryodrgn import arch  # noqa: E402

STATES = 3
# Settings that decide the simulated data and the trained model (checked by --reuse-train).
TRAIN_KEYS = ("n", "box", "apix", "snr", "seed", "max_angle", "epochs", "zdim", "enc_dim", "enc_layers",
              "dec_dim", "dec_layers", "lr", "batch_size")


def fsc05(vol, gt, apix):
    if vol.shape != gt.shape:
        raise SystemExit("map of shape %s vs ground truth %s" % (vol.shape, gt.shape))
    f, c = fsc(vol, gt)
    return resolution_at(f, c, 0.5, apix)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--box", type=int, default=64)
    ap.add_argument("--apix", type=float, default=3.0)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-angle", type=float, default=90.0, help="hinge angle of the last state (deg)")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--zdim", type=int, default=2)
    ap.add_argument("--enc-dim", type=int, default=128)
    ap.add_argument("--enc-layers", type=int, default=3)
    ap.add_argument("--dec-dim", type=int, default=128)
    ap.add_argument("--dec-layers", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--reduction", choices=("umap", "pca"), default="umap",
                    help="landscape coordinates (the protocol's default is UMAP; k-means uses z)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for every step")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "landscape"))
    ap.add_argument("--reuse-train", action="store_true",
                    help="take OUT/data and OUT/train from an earlier run with the same settings")
    a = ap.parse_args(argv)
    from sklearn.metrics import adjusted_rand_score

    t_start = time.time()
    os.makedirs(a.out, exist_ok=True)
    t = str(a.threads)
    env = dict(os.environ, OMP_NUM_THREADS=t, MKL_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t, NUMBA_NUM_THREADS=t)
    cli = [sys.executable, "-m", "flexplugin.engine.cli"]
    data, train, analysis = (os.path.join(a.out, d) for d in ("data", "train", "analysis"))
    star = os.path.join(data, "particles.star")
    train_cfg = {k: getattr(a, k) for k in TRAIN_KEYS}
    cfg_path = os.path.join(a.out, "train_config.json")
    seconds = {}

    reuse = False
    if a.reuse_train and os.path.exists(cfg_path) and os.path.exists(os.path.join(train, "z.npy")):
        with open(cfg_path) as f:
            reuse = json.load(f) == train_cfg
        if not reuse:
            raise SystemExit("--reuse-train: %s was made with other settings" % cfg_path)
    if not reuse:
        if os.path.exists(cfg_path):
            os.remove(cfg_path)
        seconds["simulate"] = run(cli + ["simulate", "--out", data, "--n", str(a.n), "--box", str(a.box),
                                         "--apix", str(a.apix), "--snr", str(a.snr), "--seed", str(a.seed),
                                         "--states", str(STATES), "--max-angle", str(a.max_angle)],
                                  os.path.join(a.out, "simulate.log"), env=env)[0]
        seconds["train"] = run(cli + ["train", "cryodrgn", "--particles", star, "--out", train,
                                      "--epochs", str(a.epochs), "--seed", str(a.seed), "--threads", t,
                                      "--log-every", "0"] + arch(a),
                               os.path.join(a.out, "train.log"), env=env)[0]
        with open(cfg_path, "w") as f:
            json.dump(train_cfg, f, indent=1)
    with open(os.path.join(train, "metrics.json")) as f:
        epochs = json.load(f)["epochs"]
    images_per_s = a.n * len(epochs) / sum(e["seconds"] for e in epochs)

    # The arguments ProtFlexLandscape.analyzeStep passes (protocol defaults, 3 clusters).
    seconds["analyze"] = run(cli + ["analyze", "--model", train, "--z", os.path.join(train, "z.npy"),
                                    "--out", analysis, "--ndim", "2", "--kmeans", str(STATES), "--pcs", "2",
                                    "--traversal-points", "10", "--seed", "0", "--threads", t]
                             + (["--umap"] if a.reduction == "umap" else []),
                             os.path.join(a.out, "analyze.log"), env=env)[0]

    truth = np.load(os.path.join(data, "labels.npy"))
    km = np.load(os.path.join(analysis, "kmeans_labels.npy"))
    nearest = np.loadtxt(os.path.join(analysis, "kmeans_nearest.txt"), dtype=int, ndmin=1)
    ari = float(adjusted_rand_score(truth, km))

    # Homogeneous reconstruct of each state's true particles.
    table = read_particles(star)
    recon_dir = os.path.join(a.out, "recon")
    os.makedirs(recon_dir, exist_ok=True)
    gts, recon_res = [], []
    t0 = time.time()
    for s in range(STATES):
        gt, _ = read_mrc(os.path.join(data, "gt_volumes", "state_%02d.mrc" % s))
        gts.append(gt)
        sub = os.path.join(recon_dir, "state_%02d.star" % s)
        write_star(sub, table.subset(np.nonzero(truth == s)[0]))
        out_map = os.path.join(recon_dir, "state_%02d.mrc" % s)
        run(cli + ["reconstruct", "--particles", sub, "--out", out_map],
            os.path.join(recon_dir, "state_%02d.log" % s), env=env)
        recon_res.append(fsc05(read_mrc(out_map)[0], gt, a.apix))
    seconds["reconstruct"] = time.time() - t0

    classes = []
    for k in range(STATES):
        members = truth[km == k]
        state, hits = Counter(members.tolist()).most_common(1)[0] if len(members) else (-1, 0)
        vol, _ = read_mrc(os.path.join(analysis, "kmeans", "vol_%03d.mrc" % k))
        res = fsc05(vol, gts[state], a.apix) if state >= 0 else float("nan")
        # the class map against every state (does it decode the right one?)
        res_all = [fsc05(vol, g, a.apix) for g in gts]
        classes.append(dict(cls=k, state=int(state), class_particles=int(len(members)),
                            purity=hits / max(len(members), 1), state_particles=int((truth == state).sum()),
                            nearest_particle=int(nearest[k]), nearest_true_state=int(truth[nearest[k]]),
                            class_map_fsc05_A=res, class_map_fsc05_A_vs_each_state=res_all,
                            reconstruct_fsc05_A=recon_res[state],
                            class_map_reaches_reconstruct=bool(res <= recon_res[state])))
    matched = sorted(c["state"] for c in classes) == list(range(STATES))
    passed = ari >= 0.95 and matched and all(c["class_map_reaches_reconstruct"] for c in classes)
    seconds["total"] = time.time() - t_start

    print("\nARI(k-means, truth) = %.4f (target >= 0.95); %s; training %.1f images/s, %d epochs"
          % (ari, "classes match distinct states" if matched else "two classes share a state",
             images_per_s, len(epochs)))
    print("%-5s %-5s %9s %7s %9s %14s %14s %s" % ("class", "state", "particles", "purity", "in state",
                                                    "class map Å", "reconstruct Å", "class <= recon"))
    for c in classes:
        print("%-5d %-5d %9d %7.3f %9d %14.2f %14.2f %s"
              % (c["cls"], c["state"], c["class_particles"], c["purity"], c["state_particles"],
                 c["class_map_fsc05_A"], c["reconstruct_fsc05_A"], c["class_map_reaches_reconstruct"]))
    print("target %s; seconds: %s" % ("met" if passed else "NOT met",
                                      ", ".join("%s %.0f" % kv for kv in seconds.items())))
    results = {"config": vars(a), "reused_training": reuse, "ari": ari, "classes_match_distinct_states": matched,
               "target_met": passed, "images_per_s": images_per_s, "epochs_trained": len(epochs),
               "classes": classes, "reconstruct_fsc05_A_per_state": recon_res, "seconds": seconds}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
