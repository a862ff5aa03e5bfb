#!/usr/bin/env python
"""Training speed, memory and arithmetic of every method, decode time and serve latency.

    .venv/bin/python benchmarks/speed.py [--boxes 64 128] [--steps 20] [--threads 2]
        [--methods cryodrgn hetsiren ...] [--out benchmarks/out/speed]

For each registered method (its paper's default Config, batch size included) and box:

- images/s of the training step (forward + backward + Adam) on random images with CTF and
  poses, after warm-up steps, in a process of its own (so peak RSS is that method's alone);
- peak RSS of that process (MiB);
- model FLOPs per image (torch.utils.flop_counter over one training step) and the achieved
  FLOP/s as a fraction of this machine's measured matmul FLOP/s (a large float32 matmul with the
  same threads, and bfloat16 where the training step runs in bfloat16 autocast);

then the time to decode one D=128 map with a default-size cryoDRGN model and the latency of one
`flexplugin serve` answer (D=64). Prints a table and writes OUT/results.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def _fake_model(name, box, inputs_dir, residues=300):
    """A method at its default config on a training box of ``box`` px (3 Å/px); an atomic model
    of ``residues`` residues for the methods that need one."""
    import numpy as np
    import torch
    from flexplugin.engine.inputs import load_inputs
    from flexplugin.engine.io.structure import read_structure  # noqa: F401 (gemmi present)
    from flexplugin.engine.methods import METHODS, DataInfo

    cls = METHODS[name]
    inputs, paths = {}, {}
    if cls.requires:
        # a random walk scaled into 0.4 of the box, cut into chains A, B, ... of 1000 residues
        pdb = os.path.join(inputs_dir, "model_%d.pdb" % residues)
        rng = np.random.default_rng(0)
        steps = rng.normal(size=(residues, 3))
        steps = 3.8 * steps / np.linalg.norm(steps, axis=1, keepdims=True)
        xyz = np.cumsum(steps, 0)
        xyz = xyz - xyz.mean(0)
        xyz *= min(1.0, 0.4 * box * 3.0 / np.abs(xyz).max())
        xyz += box * 3.0 / 2
        with open(pdb, "w") as f:
            for i, p in enumerate(xyz):
                f.write("ATOM  %5d  CA  ALA %s%4d    %8.3f%8.3f%8.3f  1.00  0.00           C\n"
                        % ((i + 1) % 100000, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i // 1000], i % 1000 + 1, *p))
        table = type("T", (), {"box": box, "apix": 3.0})()
        inputs, paths = load_inputs(cls, table, box, atomic_model=pdb)
    torch.manual_seed(0)
    return cls(cls.Config(), DataInfo(box=box, apix=3.0, **paths), inputs)


def _batch(model, box, n):
    import numpy as np
    import torch
    from flexplugin.engine.geometry import so3
    ctf = torch.tensor([[15000.0, 14000.0, 30.0, 300.0, 2.7, 0.1, 0.0, 0.0]]).repeat(n, 1)
    return {"images": torch.randn(n, box, box),
            "rotations": torch.as_tensor(so3.random_rotations(n, np.random.default_rng(0)), dtype=torch.float32),
            "shifts_px": torch.zeros(n, 2), "ctf": ctf, "index": torch.arange(n)}


def measure_method(name, box, steps, threads, workdir, residues=300):
    """Runs in its own process: images/s, FLOPs per image and the arithmetic precision."""
    import torch
    from flexplugin.engine.train import _adam, autocast_mode
    torch.set_num_threads(threads)
    model = _fake_model(name, box, workdir, residues)
    cfg = model.config
    batch = _batch(model, box, cfg.batch_size)
    opt = _adam(model, cfg)
    dtype, _ = autocast_mode(cfg.precision, torch.device("cpu"), model.cpu_bfloat16)
    model.start_epoch(1)

    def step():
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model.training_step(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops() / cfg.batch_size
    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = time.perf_counter() - t0
    return {"images_per_s": steps * cfg.batch_size / dt, "flops_per_image": flops,
            "batch_size": cfg.batch_size, "precision": str(dtype).split(".")[-1] if dtype else "float32"}


def matmul_flops(threads, dtype_name, n=2048, reps=10):
    import torch
    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


def _child(args):
    """Run ``benchmarks/speed.py --child ...`` and return (its JSON answer, its peak RSS in MiB)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child"] + [str(a) for a in args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS=str(args[3])))
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError("%s failed" % " ".join(cmd))
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024.0


def decode_time(threads, box=128):
    import torch
    from flexplugin.engine.methods import METHODS, DataInfo
    torch.set_num_threads(threads)
    cls = METHODS["cryodrgn"]
    model = cls(cls.Config(), DataInfo(box=box, apix=3.0)).eval()
    z = torch.zeros(model.zdim)
    model.decode_volume(z, box=32)
    t0 = time.perf_counter()
    model.decode_volume(z)
    return time.perf_counter() - t0


def serve_latency(threads, workdir, box=64):
    import numpy as np
    import torch
    from flexplugin.engine.methods import METHODS, DataInfo
    cls = METHODS["cryodrgn"]
    model = cls(cls.Config(), DataInfo(box=box, apix=3.0))
    path = os.path.join(workdir, "serve_model.pt")
    torch.save(model.checkpoint(), path)
    proc = subprocess.Popen([sys.executable, "-m", "flexplugin.engine.cli", "serve", "--model", path,
                             "--threads", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    proc.stdout.readline()                      # ready
    times = []
    for i in range(4):
        z = np.random.default_rng(i).normal(size=model.zdim).tolist()
        t0 = time.perf_counter()
        proc.stdin.write(json.dumps({"id": i, "z": [z]}) + "\n")
        proc.stdin.flush()
        proc.stdout.readline()
        times.append(time.perf_counter() - t0)
    proc.stdin.write('{"cmd": "quit"}\n')
    proc.stdin.flush()
    proc.wait(timeout=60)
    return float(np.median(times[1:]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boxes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per method and box")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", nargs="+", help="default: every registered method")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "speed"))
    ap.add_argument("--residues", type=int, default=300,
                    help="residues of the atomic model of the methods that need one")
    ap.add_argument("--child", nargs=6, metavar=("METHOD", "BOX", "STEPS", "THREADS", "DIR", "RESIDUES"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        name, box, steps, threads, workdir, residues = a.child
        print(json.dumps(measure_method(name, int(box), int(steps), int(threads), workdir, int(residues))))
        return
    from flexplugin.engine.methods import METHODS
    os.makedirs(a.out, exist_ok=True)
    peak = {"float32": matmul_flops(a.threads, "float32"), "bfloat16": matmul_flops(a.threads, "bfloat16")}
    print("matmul peak with %d threads: float32 %.1f GFLOP/s, bfloat16 %.1f GFLOP/s"
          % (a.threads, peak["float32"] / 1e9, peak["bfloat16"] / 1e9), flush=True)
    rows = []
    print("%-11s %5s %6s %10s %9s %12s %9s %8s" % ("method", "box", "batch", "images/s", "RSS MiB",
                                                  "GFLOP/img", "precision", "util %"), flush=True)
    for name in a.methods or sorted(METHODS):
        for box in a.boxes:
            r, rss = _child([name, box, a.steps, a.threads, a.out, a.residues])
            r.update(method=name, box=box, peak_rss_mib=rss)
            r["utilisation"] = r["flops_per_image"] * r["images_per_s"] / peak[r["precision"]]
            rows.append(r)
            print("%-11s %5d %6d %10.1f %9.0f %12.3f %9s %8.1f"
                  % (name, box, r["batch_size"], r["images_per_s"], rss, r["flops_per_image"] / 1e9,
                     r["precision"], 100 * r["utilisation"]), flush=True)
    dec = decode_time(a.threads)
    lat = serve_latency(a.threads, a.out)
    print("decode one D=128 map (cryoDRGN, default size): %.2f s; serve answer (D=64): %.2f s" % (dec, lat))
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"threads": a.threads, "matmul_peak_flops": peak, "methods": rows,
                   "decode_d128_s": dec, "serve_latency_d64_s": lat}, f, indent=1)


if __name__ == "__main__":
    main()
