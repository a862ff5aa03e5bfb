#!/usr/bin/env python
"""Lazy data at scale: peak memory of one training epoch on a 10k and on a 100k particle stack.

    .venv/bin/python benchmarks/lazy_memory.py [--box 128] [--sizes 10000 100000] [--threads 2]
        [--out benchmarks/out/lazy]

Writes one stack of the largest size (noise images: memory does not depend on their content),
with random poses and CTF, and a star file per size that uses its first N images (RELION
``index@stack``, the way particle sets reference shared stacks). Then trains cryoDRGN (a small
network, batch 64, one epoch, the whole set: reading every image once) on each in a process of its
own and reports that process's peak RSS. Target (issue "Performance and scale"): the 100k run
within +500 MB of the 10k run. The stack of 100k D=128 images takes 6.6 GB of disk.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from flexplugin.engine.geometry import so3  # noqa: E402
from flexplugin.engine.io import write_star  # noqa: E402
from flexplugin.engine.io.mrc import new_stack  # noqa: E402
from flexplugin.engine.io.table import CTF_FIELDS, ParticleTable  # noqa: E402

TRAIN = ["--zdim", 2, "--enc-dim", 32, "--enc-layers", 1, "--dec-dim", 32, "--dec-layers", 1,
         "--batch-size", 64, "--lr", 1e-3, "--log-every", 200]


def make_data(out, sizes, box, apix=3.0, seed=0):
    rng = np.random.default_rng(seed)
    n = max(sizes)
    stack = os.path.join(out, "particles.mrcs")
    if not os.path.exists(stack):
        with new_stack(stack, n, box, apix) as data:
            for a in range(0, n, 2000):
                data[a:a + 2000] = rng.standard_normal((min(2000, n - a), box, box), dtype=np.float32)
    ctf = np.zeros((n, len(CTF_FIELDS)))
    ctf[:, CTF_FIELDS.index("defocus_u")] = rng.uniform(10000, 25000, n)
    ctf[:, CTF_FIELDS.index("defocus_v")] = ctf[:, CTF_FIELDS.index("defocus_u")]
    ctf[:, CTF_FIELDS.index("voltage")] = 300.0
    ctf[:, CTF_FIELDS.index("cs")] = 2.7
    ctf[:, CTF_FIELDS.index("amp_contrast")] = 0.1
    table = ParticleTable(stacks=[stack], stack_id=np.zeros(n, int), index=np.arange(n), apix=apix,
                          box=box, rotations=so3.random_rotations(n, rng), shifts_A=np.zeros((n, 2)),
                          ctf=ctf)
    stars = {}
    for size in sizes:
        stars[size] = os.path.join(out, "particles_%d.star" % size)
        write_star(stars[size], table.subset(np.arange(size)))
    return stars


def train_peak_rss(star, out, threads):
    cmd = [sys.executable, "-m", "flexplugin.engine.cli", "train", "cryodrgn", "--particles", star,
           "--out", out, "--epochs", 1, "--threads", threads] + TRAIN
    t0 = time.time()
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit("training failed: %s" % " ".join(map(str, cmd)))
    return usage.ru_maxrss / 1024.0, time.time() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--box", type=int, default=128)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "lazy"))
    ap.add_argument("--make-data", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    if a.make_data:
        make_data(a.out, a.sizes, a.box)
        return
    # The data are written by a process of their own: a training process started from this one
    # would otherwise report this process's peak (Linux carries the parent's high-water mark of
    # a vfork'ed child into its ru_maxrss: the stack's writes counted as training memory).
    subprocess.run([sys.executable, os.path.abspath(__file__), "--make-data", "--box", str(a.box),
                    "--out", a.out, "--sizes"] + [str(n) for n in a.sizes], check=True)
    stars = {n: os.path.join(a.out, "particles_%d.star" % n) for n in a.sizes}
    results = {}
    for size in sorted(a.sizes):
        rss, seconds = train_peak_rss(stars[size], os.path.join(a.out, "train_%d" % size), a.threads)
        results[size] = {"peak_rss_mib": rss, "seconds": seconds}
        print("%7d particles, D=%d: peak RSS %.0f MiB, %.0f s" % (size, a.box, rss, seconds), flush=True)
    lo, hi = min(a.sizes), max(a.sizes)
    extra = results[hi]["peak_rss_mib"] - results[lo]["peak_rss_mib"]
    print("peak RSS of %d over %d particles: %+.0f MiB (target: +500 MiB at most)" % (hi, lo, extra))
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"box": a.box, "results": results, "extra_mib": extra}, f, indent=1)


if __name__ == "__main__":
    main()
