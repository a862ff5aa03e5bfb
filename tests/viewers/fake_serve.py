"""A fake decoder server for the viewer tests: it speaks the ``flexplugin serve`` protocol with
numpy only (no torch). Its map has two Gaussian blobs, one moved by z[0], z[1] and scaled by z[2].
``--die`` fails at start as a server with a missing checkpoint does; ``--delay S`` waits S seconds
before its ready line, as a server loading its model does."""
import base64
import json
import os
import sys
import time

import numpy as np

ZDIM, BOX, APIX = 4, 24, 4.0


def make_map(z, box):
    g = np.mgrid[:box, :box, :box].astype(np.float32) - box // 2
    s = box / 24.0
    a = np.exp(-((g[0]) ** 2 + (g[1] - 3 * s * z[1]) ** 2 + (g[2] - 3 * s * z[0]) ** 2) / (8 * s * s))
    b = np.exp(-((g[0] - 2 * s) ** 2 + (g[1] + 4 * s) ** 2 + (g[2] + 4 * s) ** 2) / (6 * s * s))
    return ((1.0 + 0.1 * z[2]) * a + b + 0.01 * z[3]).astype(np.float32)


def main():
    if "--die" in sys.argv:
        sys.stderr.write("error: model.pt: no such checkpoint\n")
        sys.exit(2)
    if "--delay" in sys.argv:
        time.sleep(float(sys.argv[sys.argv.index("--delay") + 1]))
    print(json.dumps({"ready": True, "method": "fake", "zdim": ZDIM, "box": BOX, "apix": APIX}),
          flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("cmd") == "quit":
            break
        rid = req.get("id")
        try:
            z = np.asarray(req["z"], dtype=np.float32)
            if z.ndim != 2 or z.shape[1] != ZDIM:
                raise ValueError("latent points must have %d values" % ZDIM)
            box = req.get("box") or BOX
            maps = [make_map(v, box) for v in z]
            if req.get("out"):
                files = []
                for i, m in enumerate(maps):
                    path = os.path.join(req["out"], "vol_%03d.npy" % i)
                    np.save(path, m)
                    files.append(path)
                answer = {"id": rid, "files": files}
            else:
                answer = {"id": rid, "shape": [box] * 3, "dtype": "float32",
                          "arrays": [base64.b64encode(m.astype("<f4").tobytes()).decode() for m in maps]}
        except Exception as e:
            answer = {"id": rid, "error": str(e)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
