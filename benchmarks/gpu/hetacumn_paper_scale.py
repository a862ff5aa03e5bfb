#!/usr/bin/env python
"""HetACUMN at the paper's scale on a GPU: poses withheld, 1D motion, D=64, SNR 0.1.

    python benchmarks/gpu/hetacumn_paper_scale.py [--n 50000 --epochs 100 --fch-epochs 50
        --batch-size 128 --device cuda --precision auto --out benchmarks/out/hetacumn_paper_scale]

    # dry run on a CPU (a tiny set, a few minutes): checks the script end to end
    python benchmarks/gpu/hetacumn_paper_scale.py --dry-run

1. simulates the built-in hinge object in 10 states along its motion (``flexplugin simulate``,
   D=64, 3 Å/px, CTF, shifts, SNR 0.1);
2. trains ``flexplugin train hetacumn`` with the poses ignored and the paper's architecture and
   schedule (ResNet-18 width 64, heads 256, decoder 256 x 3, zdim 8, lr 1.5e-4, the conformation
   head frozen for ``--fch-epochs``), on ``--device`` with mixed precision (``--precision auto``:
   float16 autocast and gradient scaling on CUDA), keeping every epoch's checkpoint;
3. scores every ``--every``-th checkpoint: the median ||R - R_true||_F^2 after the global
   alignment (random poses: ~6.7; the paper reaches ~1e-2), the median shift error (px^2) and
   |Spearman(PC1 of z, state)| once the conformation head is trained.

Writes OUT/curve.jsonl (one row per scored epoch) and OUT/result.json (the last row, the device's
name, the options).
"""
import argparse
import json
import os
import shlex
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from hetacumn_abinitio import cli, curve  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--box", type=int, default=64)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--fch-epochs", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--num-workers", type=int, default=4)
    ap.add_argument("--every", type=int, default=5, help="score every N-th epoch (and the last)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-args", default="--enc-dim 64 --head-dim 256 --dec-dim 256 --dec-layers 3 "
                    "--zdim 8 --lr 1.5e-4", help="more `train hetacumn` options (one string)")
    ap.add_argument("--dry-run", action="store_true",
                    help="a tiny set on the CPU: 200 particles, D=32, 2 epochs (1 frozen), small widths")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "out", "hetacumn_paper_scale"))
    a = ap.parse_args(argv)
    if a.dry_run:
        a.n, a.box, a.epochs, a.fch_epochs, a.batch_size, a.every = 200, 32, 2, 1, 32, 1
        a.device, a.precision, a.num_workers = "cpu", "fp32", 0
        a.train_args = "--enc-dim 8 --head-dim 32 --dec-dim 32 --dec-layers 2 --zdim 8 --lr 1.5e-4"
    import torch
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --dry-run on a CPU")
    card = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "CPU"
    os.makedirs(a.out, exist_ok=True)
    data = os.path.join(a.out, "data")
    if not os.path.exists(os.path.join(data, "z_true.npy")):
        cli("simulate", "--out", data, "--n", a.n, "--box", a.box, "--apix", 3.0, "--snr", a.snr,
            "--seed", a.seed, "--states", 10)
    run = os.path.join(a.out, "run")
    t0 = time.time()
    cli("train", "hetacumn", "--particles", os.path.join(data, "particles.star"), "--out", run,
        "--epochs", a.epochs, "--fch-epochs", a.fch_epochs, "--batch-size", a.batch_size,
        "--device", a.device, "--precision", a.precision, "--num-workers", a.num_workers,
        "--seed", a.seed, "--keep-epochs", "--log-every", 0, *shlex.split(a.train_args))
    wall = time.time() - t0
    rows = curve(run, data, threads=torch.get_num_threads(), device=a.device, every=a.every)
    with open(os.path.join(a.out, "curve.jsonl"), "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
            print("epoch %3d  images %8d  %6d s  median ||dR||^2 %.4f (%.1f deg)  shift %.2f px^2%s"
                  % (row["epoch"], row["images"], row["seconds"], row["rot_median"],
                     row["angle_median_deg"], row["shift_median_px2"],
                     "  |Spearman| %.3f" % row["spearman_pc1"] if "spearman_pc1" in row else ""),
                  flush=True)
    result = dict(rows[-1], device=card, wall_seconds=round(wall), options=vars(a))
    with open(os.path.join(a.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("%s: median ||dR||^2 %.4f, |Spearman(PC1, state)| %s after %d epochs (%.0f s)"
          % (card, result["rot_median"], "%.3f" % result["spearman_pc1"] if "spearman_pc1" in result
             else "-", result["epoch"], wall))


if __name__ == "__main__":
    main()
