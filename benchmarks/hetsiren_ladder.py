#!/usr/bin/env python
"""HetSIREN's latent rung by rung on any simulated set (issue "HetSIREN", item 1).

    .venv/bin/python benchmarks/hetsiren_ladder.py --data DIR --out OUT [--epochs 20]
        [--runs a b c] [--zdim 4] [--seed 0] [--set key=value ...]

DIR is the output of ``flexplugin simulate`` (particles.star, labels.npy, z_true.npy,
gt_volumes/). Every run is HetSIREN at its defaults (plus ``--set`` overrides), trained through
``flexplugin.engine.train.train`` on one thread:

(a) ``a``: z is the true state (2 (t - 0.5), zdim 1, jittered by ``JITTER`` in training) instead
    of the encoder's. Reported: the correlation of the change between the maps decoded at the
    first and last states with the ground truth's, and the best z of each image on a grid against
    that decoder (|Spearman| with the state: what one image can tell about its state, the ceiling
    of any encoder against this decoder);
(b) ``b``: the encoder alone (fresh) against the frozen decoder of (a), zdim 1;
(c) ``c``: encoder and decoder together at ``--zdim``.

Scores of z: |Spearman(PC1, state)|, kNN accuracy of the state (10 neighbours, 3-fold CV), k-means
ARI. Writes OUT/NAME/ (the run) and OUT/results.json; prints a Markdown table.
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

JITTER = 0.05
ENCODER = ("trunk.", "z_head.", "latent.")   # the parameters rung (b) trains


def true_z(data):
    return 2 * (np.load(os.path.join(data, "z_true.npy")) - 0.5)


def z_scores(z, labels):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from flexplugin.engine.analysis.poses import spearman_pc1
    k = int(labels.max()) + 1
    return dict(spearman=float(spearman_pc1(z, labels)),
                knn=float(cross_val_score(KNeighborsClassifier(10), z, labels, cv=3).mean()),
                ari=float(adjusted_rand_score(labels, KMeans(k, n_init=4, random_state=0).fit_predict(z))))


def change_corr(model, z_ends, data, states):
    import torch

    from flexplugin.engine.io import read_mrc
    with torch.no_grad():
        ends = [model.decode_volume(torch.as_tensor(np.atleast_1d(z), dtype=torch.float32)).numpy()
                for z in z_ends]
    gt = [read_mrc(os.path.join(data, "gt_volumes", "state_%02d.mrc" % i))[0] for i in (0, states - 1)]
    return float(np.corrcoef((ends[1] - ends[0]).ravel(), (gt[1] - gt[0]).ravel())[0, 1])


def grid_z(model, data, grid, n=1000):
    """Each of the first ``n`` images' best z on ``grid`` (zdim 1) against the model's decoder."""
    import torch

    from flexplugin.engine.data import ParticleDataset, loader
    from flexplugin.engine.io import read_particles
    ds = ParticleDataset(read_particles(os.path.join(data, "particles.star")), scale=model.data_info.scale)
    rows = np.arange(min(n, len(ds)))
    out = []
    with torch.no_grad():
        vals = model._volume(torch.as_tensor(grid, dtype=torch.float32)[:, None])
        for b in loader(ds, rows, 100):
            err = [((model._filter(model._project(v.expand(len(b["images"]), -1), b["rotations"],
                                                  b["shifts_px"]), b.get("ctf")) - b["images"]) ** 2).mean((-2, -1))
                   for v in vals]
            out.append(torch.stack(err, 1))
    return rows, grid[torch.cat(out).argmin(1).numpy()]


def run(rung, data, out, epochs, config, seed, oracle_dir=None):
    import torch

    from flexplugin.engine.methods import METHODS
    from flexplugin.engine.methods.hetsiren import HetSIREN
    from flexplugin.engine.train import train

    cls = HetSIREN
    if rung == "a":
        zt = torch.as_tensor(true_z(data), dtype=torch.float32)

        class Oracle(HetSIREN):
            name = "hetsiren_oracle"

            def _latent(self, img, batch):
                z = zt[batch["index"].long()][:, None]
                return z + JITTER * torch.randn_like(z) if self.training else z

            def settle(self, z, log=print):
                return z            # the latent is the truth: kept in its own units
        cls = Oracle
    elif rung == "b":
        weights = torch.load(os.path.join(oracle_dir, "weights.pt"))

        class EncoderOnly(HetSIREN):
            name = "hetsiren_encoder_only"

            def initialise(self, dataset, rows, epochs, log=print):
                self.load_state_dict({k: v for k, v in weights.items() if not k.startswith(ENCODER)},
                                     strict=False)
                for k, p in self.named_parameters():
                    p.requires_grad_(k.startswith(ENCODER))

            def settle(self, z, log=print):
                return z            # in the oracle's units (the true state's)
        cls = EncoderOnly
    METHODS[cls.name] = cls
    model = train(cls.name, os.path.join(data, "particles.star"), out, epochs, config=config,
                  seed=seed, threads=1, log_every=0)
    model.eval()
    if rung == "a":
        torch.save(model.state_dict(), os.path.join(out, "weights.pt"))
    labels = np.load(os.path.join(data, "labels.npy"))
    states = int(labels.max()) + 1
    z = np.load(os.path.join(out, "z.npy"))
    res = z_scores(z, labels)
    zs = [np.median(z[labels == k], 0) for k in (0, states - 1)]
    res["change_corr"] = change_corr(model, zs, data, states)
    if rung == "a":
        from scipy.stats import spearmanr
        rows, best = grid_z(model, data, np.linspace(-1.3, 1.3, 27))
        res["grid_spearman"] = float(abs(spearmanr(best, true_z(data)[rows]).correlation))
        res["grid_knn"] = z_scores(best[:, None], labels[rows])["knn"]
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--runs", nargs="+", default=["a", "b", "c"], choices=["a", "b", "c"])
    p.add_argument("--zdim", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="HetSIREN Config overrides for every run (e.g. delta_l2=0 lr=3e-4)")
    a = p.parse_args()
    over = {}
    for kv in a.set:
        k, v = kv.split("=", 1)
        try:
            over[k] = json.loads(v)
        except ValueError:
            over[k] = v
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "results.json")
    results = json.load(open(path)) if os.path.exists(path) else {}
    for rung in a.runs:
        config = dict(over, zdim=1 if rung in "ab" else a.zdim)
        res = run(rung, a.data, os.path.join(a.out, rung), a.epochs, config, a.seed,
                  oracle_dir=os.path.join(a.out, "a"))
        results[rung] = dict(res, config=config, epochs=a.epochs, seed=a.seed)
        print("rung %s: %s" % (rung, json.dumps(res)), flush=True)
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
    print("| rung | abs Spearman | kNN | ARI | change corr. | grid-search z abs Spearman / kNN |")
    print("|---|---|---|---|---|---|")
    for rung, r in sorted(results.items()):
        g = "%.3f / %.3f" % (r["grid_spearman"], r["grid_knn"]) if "grid_spearman" in r else ""
        print("| %s | %.3f | %.3f | %.3f | %.3f | %s |" % (rung, r["spearman"], r["knn"], r["ari"],
                                                           r["change_corr"], g))


if __name__ == "__main__":
    main()
