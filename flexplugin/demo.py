"""``make demo``: simulate a particle set and reconstruct its consensus map with the engine.

Runs the engine's command line exactly as a user would, in ``demo-output/`` (or ``$DEMO_OUT``),
and prints where the results are.
"""
import os
import subprocess
import sys
import time

import numpy as np


def _run(*args):
    cmd = [sys.executable, "-m", "flexplugin.engine.cli"] + [str(a) for a in args]
    print("$ flexplugin " + " ".join(str(a) for a in args), flush=True)
    subprocess.run(cmd, check=True)


def main():
    out = os.path.abspath(os.environ.get("DEMO_OUT", "demo-output"))
    n = int(os.environ.get("DEMO_N", "3000"))
    t0 = time.time()
    data = os.path.join(out, "data")
    _run("simulate", "--out", data, "--n", n, "--box", 48, "--apix", 3.0, "--snr", 0.1, "--states", 1,
         "--seed", 1)
    _run("check", os.path.join(data, "particles.star"))
    recon = os.path.join(out, "consensus", "map.mrc")
    _run("reconstruct", "--particles", os.path.join(data, "particles.star"), "--out", recon)

    from flexplugin.engine.analysis.fsc import fsc, resolution_at
    from flexplugin.engine.io import read_mrc
    vol, apix = read_mrc(recon)
    gt, _ = read_mrc(os.path.join(data, "gt_volumes", "state_00.mrc"))
    f, c = fsc(vol, gt)
    print("\nDemo finished in %.0f s." % (time.time() - t0))
    print("  simulated particles:  %s" % os.path.join(data, "particles.star"))
    print("  consensus map:        %s (+ half maps, FSC curve)" % recon)
    print("  ground truth:         %s" % os.path.join(data, "gt_volumes", "state_00.mrc"))
    print("  FSC with ground truth: 0.5 at %.1f Å, correlation %.3f"
          % (resolution_at(f, c, 0.5, apix), float(np.corrcoef(vol.ravel(), gt.ravel())[0, 1])))


if __name__ == "__main__":
    main()
