#!/usr/bin/env python
"""Click -> map shown in the landscape window, through ``flexplugin serve``, on the CPU.

    .venv/bin/python benchmarks/click_latency.py [--box 64] [--threads 1 2] [--clicks 10]
        [--points 100000] [--out benchmarks/out/click]

A cryoDRGN model of the default size (decoder 256 x 3, zdim 8; weights as initialised: the
decoder's arithmetic does not depend on them) at D=``box`` is saved as a checkpoint; for each
thread count a server is started, the landscape window (offscreen Qt) opened on ``points``
random latent points, and ``clicks`` particles are clicked one after the other. Each click is
timed from the click to the map being in the window's volume view with its isosurface drawn
(``click_at(wait=True)``). Also timed: ``decode_volume`` alone in this process. Target (issue
"Landscape, viewers"): the map shown within 1 s at D=64 on a CPU.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--box", type=int, default=64)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "click"))
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)

    import torch
    from flexplugin.engine.methods import DataInfo
    from flexplugin.engine.methods.base import autocast_mode
    from flexplugin.engine.methods.cryodrgn import CryoDRGN, CryoDRGNConfig
    torch.manual_seed(0)
    model = CryoDRGN(CryoDRGNConfig(), DataInfo(box=a.box, apix=2.0))
    ck = os.path.join(a.out, "default%d.pt" % a.box)
    torch.save(model.checkpoint(), ck)
    precision = autocast_mode("auto", torch.device("cpu"))[0]

    from PyQt5 import QtWidgets
    from flexplugin.viewers.landscape_window import LandscapeWindow
    from flexplugin.viewers.serve_client import DecoderClient
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    rng = np.random.default_rng(0)
    z = rng.normal(size=(a.points, 8)).astype(np.float32)
    results = dict(box=a.box, points=a.points, clicks=a.clicks,
                   precision=str(precision).split(".")[-1] if precision else "float32", runs=[])
    for threads in a.threads:
        torch.set_num_threads(threads)
        alone = []
        for i in range(3):
            t = time.perf_counter()
            model.decode_volume(torch.as_tensor(z[i]))
            alone.append(time.perf_counter() - t)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        argv = [sys.executable, "-m", "flexplugin.engine.cli", "serve", "--model", ck,
                "--threads", str(threads)]
        with DecoderClient(argv, env=env) as dec:
            win = LandscapeWindow(z[:, :2], z=z, ids=np.arange(1, a.points + 1), decoder=dec,
                                  axis_labels=["z 1", "z 2"])
            win.show()
            app.processEvents()
            shown, decoded = [], []
            for i in rng.choice(a.points, a.clicks + 1, replace=False):
                t = time.perf_counter()
                win.click_at(float(z[i, 0]), float(z[i, 1]))
                shown.append(time.perf_counter() - t)
                decoded.append(win.last_decode_seconds)
                assert win.last_map is not None and win.last_map.shape == (a.box,) * 3
            win.close()
        run = dict(threads=threads, decode_volume_s=min(alone),
                   click_to_shown_s=shown[1:], decode_request_s=decoded[1:],   # first: warm-up
                   median_click_to_shown_s=statistics.median(shown[1:]),
                   max_click_to_shown_s=max(shown[1:]))
        results["runs"].append(run)
        print("D=%d, %d thread(s), %s: click -> map shown median %.3f s (max %.3f, %d clicks after "
              "one warm-up); server request median %.3f s; decode_volume alone %.3f s"
              % (a.box, threads, results["precision"], run["median_click_to_shown_s"],
                 run["max_click_to_shown_s"], a.clicks, statistics.median(decoded[1:]),
                 run["decode_volume_s"]), flush=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
