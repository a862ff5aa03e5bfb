#!/usr/bin/env python
"""HetSIREN's latent under ablations of its defaults, on the tests' 1D motion (issue "HetSIREN").

    .venv/bin/python benchmarks/hetsiren_ablations.py [--seeds 0 1 2 --epochs 8 --threads 1
        --variants default omega30 conv no-init ... --out benchmarks/out/hetsiren_ablations]

Simulates the built-in hinge (D=32, 1500 particles, 5 states, SNR 1, CTF, shifts; the tests'
motion set) and trains HetSIREN at zdim 4, lr 3e-4, batch 16 (the tests' settings) once per
variant and seed. A variant is the defaults with some hyper-parameters changed (``VARIANTS``).
Reports per run: |Spearman(PC1 of z, state)|, the kNN accuracy of the state from z (10
neighbours, 3-fold cross-validation; chance 0.2), the k-means ARI, and the correlation of the
change between the first and last states' decoded maps (at each state's median z) with the
ground truth's change. Writes OUT/results.json and prints a Markdown table.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from state_maps import median_z  # noqa: E402

VARIANTS = {
    "default": {},
    "omega30": {"omega0": 30.0},                   # the published first-layer frequency
    "conv": {"encoder": "conv"},                   # the paper's default encoder
    "no-init": {"init_consensus": False},          # consensus learned from zero
    "published": {"omega0": 30.0, "encoder": "conv", "init_consensus": False},
    "fp32": {"precision": "fp32"},
}
BASE = dict(zdim=4, lr=3e-4, batch_size=16)


def scores(model, z, data):
    import torch
    from scipy.stats import spearmanr
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from flexplugin.engine.analysis.poses import pc1
    from flexplugin.engine.io import read_mrc
    labels = np.load(os.path.join(data, "labels.npy"))
    k = int(labels.max()) + 1
    zs = median_z(z, labels, k)
    ends = [model.decode_volume(torch.as_tensor(zs[i], dtype=torch.float32)).numpy() for i in (0, k - 1)]
    gt = [read_mrc(os.path.join(data, "gt_volumes", "state_%02d.mrc" % i))[0] for i in (0, k - 1)]
    return dict(
        spearman=abs(spearmanr(pc1(z), np.load(os.path.join(data, "z_true.npy"))).correlation),
        knn=float(cross_val_score(KNeighborsClassifier(10), z, labels, cv=3).mean()),
        ari=float(adjusted_rand_score(labels, KMeans(k, n_init=4, random_state=0).fit_predict(z))),
        change_corr=float(np.corrcoef((ends[1] - ends[0]).ravel(), (gt[1] - gt[0]).ravel())[0, 1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "hetsiren_ablations"))
    a = ap.parse_args(argv)
    from flexplugin.engine.cli import main as cli
    from flexplugin.engine.train import train
    data = os.path.join(a.out, "data")
    if not os.path.exists(os.path.join(data, "particles.star")):
        assert cli(["simulate", "--out", data, "--n", "1500", "--box", "32", "--apix", "3.0",
                    "--snr", "1", "--seed", "4", "--states", "5"]) == 0
    rows = []
    for name in a.variants:
        for seed in a.seeds:
            out = os.path.join(a.out, "%s_s%d" % (name, seed))
            t0 = time.time()
            model = train("hetsiren", os.path.join(data, "particles.star"), out, a.epochs,
                          config=dict(BASE, **VARIANTS[name]), seed=seed, threads=a.threads,
                          log_every=0, log=lambda *x: None)
            r = dict(variant=name, seed=seed, seconds=time.time() - t0,
                     **scores(model.eval(), np.load(os.path.join(out, "z.npy")), data))
            rows.append(r)
            print("%-10s seed %d: |Spearman| %.3f  kNN %.3f  ARI %.3f  state-change corr %.3f  (%.0f s)"
                  % (name, seed, r["spearman"], r["knn"], r["ari"], r["change_corr"], r["seconds"]),
                  flush=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(dict(config=vars(a), base=BASE, variants=VARIANTS, runs=rows), f, indent=1)
    print("\n| variant | seed | kNN accuracy | abs Spearman | k-means ARI | state-change map corr. |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d | %.3f | %.3f | %.3f | %.3f |" % (r["variant"], r["seed"], r["knn"], r["spearman"],
                                                          r["ari"], r["change_corr"]))


if __name__ == "__main__":
    main()
