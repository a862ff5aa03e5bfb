#!/usr/bin/env python
"""Heterogeneous training: ours (`flexplugin train cryodrgn`) vs `cryodrgn train_vae` 4.3.1.

    .venv/bin/python benchmarks/train_vs_cryodrgn.py [--n 5000 --box 64 --states 10 --snr 0.1
        --epochs 20 --zdim 8 --enc-dim 256 --enc-layers 3 --dec-dim 256 --dec-layers 3
        --lr 1e-4 --batch-size 8 --threads 2 --out benchmarks/out/train]

1. simulates a 1D-motion set (the built-in hinge object in ``--states`` states, CTF, shifts,
   known poses) with our simulator: OUT/data (particles.star, z_true.npy, labels.npy, gt_volumes);
2. trains ours and cryodrgn 4.3.1 (an external peer program in its own venv, built by
   benchmarks/setup_peer.sh; none of its code is part of this project) with the same
   architecture (residual MLPs, geom_lowf positional encoding, half-lattice decoder), latent
   size, epochs, batch size, learning rate, seed and CPU threads. cryodrgn gets poses and CTF
   from `parse_pose_star` / `parse_ctf_star` and its default data inversion (its CTF is the
   negative of ours, so it sees the protein bright, like ours);
3. reports for each: images/s (training epochs only, from the logs), |Spearman(PC1 of z, state)|,
   and the FSC=0.5 resolution of the map decoded at each state's median z against that state's
   ground-truth map (`cryodrgn eval_vol` for the peer, `flexplugin decode` for ours).
Writes OUT/results.json.

Measured (benchmarks/RESULTS.md, "The issue's size"): --n 5000 --box 64 --states 10 --snr 0.1
--epochs 10 --zdim 8, 128x3 encoder/decoder, lr 1e-4, batch 8, 1 thread each, three seeds:
|Spearman(PC1 z, state)| ours 0.925 vs cryodrgn 0.915 (mean), mean FSC=0.5 of the state maps vs
ground truth 12.75 vs 12.97 Å (ours at least as far on every seed); speed on an idle 2-core CPU
with AVX-512 BF16 (--n 1500 --epochs 3): 159.3 vs 58.7 img/s, ratio 2.72.
``--reuse-peer`` takes cryodrgn's results from OUT/results.json of an earlier run with the same
settings (the peer is the slow half).
"""
import argparse
import glob
import json
import os
import pickle
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from flexplugin.engine.io.mrc import read_mrc  # noqa: E402
from reconstruct_vs_cryodrgn import orientation_check, prepare_peer, run  # noqa: E402
from state_maps import median_z, state_resolutions, state_spearman  # noqa: E402


def arch(a):
    return ["--zdim", str(a.zdim), "--enc-dim", str(a.enc_dim), "--enc-layers", str(a.enc_layers),
            "--dec-dim", str(a.dec_dim), "--dec-layers", str(a.dec_layers), "--lr", str(a.lr),
            "--batch-size", str(a.batch_size)]


def run_ours(a, star, env):
    out = os.path.join(a.out, "ours")
    py = sys.executable
    run([py, "-m", "flexplugin.engine.cli", "train", "cryodrgn", "--particles", star, "--out", out,
         "--epochs", str(a.epochs), "--seed", str(a.seed), "--pe", "geom_lowf", "--threads",
         str(a.threads), "--log-every", "0"] + arch(a), os.path.join(a.out, "ours_train.log"), env=env)
    with open(os.path.join(out, "metrics.json")) as f:
        seconds = sum(m["seconds"] for m in json.load(f)["epochs"])
    z = np.load(os.path.join(out, "z.npy"))

    def decode(zs, vol_dir):
        np.savetxt(os.path.join(a.out, "ours_z_states.txt"), zs)
        run([py, "-m", "flexplugin.engine.cli", "decode", "--model", out, "--z-file",
             os.path.join(a.out, "ours_z_states.txt"), "--out", vol_dir],
            os.path.join(a.out, "ours_decode.log"), env=env)
    return z, seconds, decode


def run_peer(a, star, data_dir, env):
    out = os.path.join(a.out, "cryodrgn")
    exe, poses, ctf, _, _ = prepare_peer(a.peer_venv, out, star, data_dir, a.box, a.apix, env)
    _, text = run([exe, "train_vae", star, "--poses", poses, "--ctf", ctf, "--datadir", data_dir,
                   "-o", out, "-n", str(a.epochs), "--seed", str(a.seed), "--shuffle-seed", str(a.seed),
                   "--pe-type", "geom_lowf", "--domain", "fourier", "--no-analysis",
                   "--num-workers", "0"] + arch(a), os.path.join(out, "train_vae.log"), env=env)
    times = re.findall(r"Epoch: \d+ .*Finished in (\d+):(\d+):([\d.]+)", text)
    seconds = sum(int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in times)

    def latest(stem):
        """OUT/stem.pkl (the final epoch), else the highest OUT/stem.N.pkl."""
        final = os.path.join(out, stem + ".pkl")
        if os.path.exists(final):
            return final
        return max(glob.glob(os.path.join(out, stem + ".*.pkl")),
                   key=lambda p: int(p.rsplit(".", 2)[1]))
    with open(latest("z"), "rb") as f:
        z = np.asarray(pickle.load(f))
    weights = latest("weights")

    def decode(zs, vol_dir):
        np.savetxt(os.path.join(out, "z_states.txt"), zs)
        run([exe, "eval_vol", weights, "-c", os.path.join(out, "config.yaml"), "--zfile",
             os.path.join(out, "z_states.txt"), "--Apix", str(a.apix), "-o", vol_dir],
            os.path.join(out, "eval_vol.log"), env=env)
    return z, seconds, decode


def evaluate(name, z, seconds, decode, a, data_dir):
    labels = np.load(os.path.join(data_dir, "labels.npy"))
    vol_dir = os.path.join(a.out, name.replace(" ", "_") + "_states")
    decode(median_z(z, labels, a.states), vol_dir)
    res = state_resolutions(vol_dir, data_dir, a.apix)
    vol0, _ = read_mrc(sorted(glob.glob(os.path.join(vol_dir, "*.mrc")))[0])
    gt0, _ = read_mrc(os.path.join(data_dir, "gt_volumes", "state_00.mrc"))
    return dict(images_per_s=a.n * a.epochs / seconds, train_seconds=seconds,
                spearman_pc1=state_spearman(z, data_dir), fsc05_A_per_state=res,
                fsc05_A_mean=float(np.mean(res)), orientation_state0=orientation_check(vol0, gt0)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--box", type=int, default=64)
    ap.add_argument("--apix", type=float, default=3.0)
    ap.add_argument("--states", type=int, default=10)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--zdim", type=int, default=8)
    ap.add_argument("--enc-dim", type=int, default=256)
    ap.add_argument("--enc-layers", type=int, default=3)
    ap.add_argument("--dec-dim", type=int, default=256)
    ap.add_argument("--dec-layers", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for both programs")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "train"))
    ap.add_argument("--peer-venv", default=os.path.join(HERE, ".peer", "venv"))
    ap.add_argument("--reuse-peer", action="store_true",
                    help="take cryodrgn's results from OUT/results.json of an earlier run of the same "
                         "command (same data and settings) instead of training it again")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    data_dir = os.path.join(a.out, "data")
    run([sys.executable, "-m", "flexplugin.engine.cli", "simulate", "--out", data_dir, "--n", str(a.n),
         "--box", str(a.box), "--apix", str(a.apix), "--snr", str(a.snr), "--seed", str(a.seed),
         "--states", str(a.states)], os.path.join(a.out, "simulate.log"), env=env)
    star = os.path.join(data_dir, "particles.star")
    results = {"config": vars(a)}
    earlier = os.path.join(a.out, "results.json")
    if a.reuse_peer:
        with open(earlier) as f:
            old = json.load(f)
        same = {k: v for k, v in old["config"].items() if k not in ("reuse_peer",)}
        if same != {k: v for k, v in vars(a).items() if k in same}:
            raise SystemExit("--reuse-peer: %s was made with other settings" % earlier)
        results["cryodrgn_reused_from"] = old.get("cryodrgn_reused_from", old.get("date", earlier))
    # (result key, how to run it, results of an earlier run to take instead)
    runs = (("ours", lambda: run_ours(a, star, env), None),
            ("cryodrgn", lambda: run_peer(a, star, data_dir, env), old["cryodrgn"] if a.reuse_peer else None))
    for name, fn, reused in runs:
        results[name] = reused if reused is not None else evaluate(name, *fn(), a, data_dir)
        r = results[name]
        print("%-9s %8.1f img/s  |Spearman(PC1 z, state)| %.3f  FSC=0.5 vs GT (mean over states) %.2f Å  %s"
              % (name, r["images_per_s"], r["spearman_pc1"], r["fsc05_A_mean"],
                 " ".join("%.1f" % x for x in r["fsc05_A_per_state"])), flush=True)
    ours, peer = results["ours"], results["cryodrgn"]
    results["ratio_images_per_s_ours_over_cryodrgn"] = ours["images_per_s"] / peer["images_per_s"]
    print("speed ratio ours/cryodrgn: %.2f; Spearman %.3f vs %.3f; mean FSC=0.5 %.2f vs %.2f Å (lower is better)"
          % (results["ratio_images_per_s_ours_over_cryodrgn"], ours["spearman_pc1"], peer["spearman_pc1"],
             ours["fsc05_A_mean"], peer["fsc05_A_mean"]))
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
