"""Shared measures of the 1D-motion benchmarks: per-state latent points and the resolution of the
maps decoded there against the simulator's ground-truth maps.

The simulator (``flexplugin simulate --states K``) writes DATA/labels.npy (the state of each
particle), DATA/z_true.npy (its position along the motion) and DATA/gt_volumes/state_KK.mrc.
"""
import glob
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

from flexplugin.engine.analysis.fsc import fsc, resolution_at  # noqa: E402
from flexplugin.engine.analysis.poses import spearman_pc1  # noqa: E402
from flexplugin.engine.io.mrc import read_mrc  # noqa: E402


def median_z(z, labels, k):
    """(k, zdim): the per-dimension median of z over the particles of each state."""
    z = np.asarray(z).reshape(len(z), -1)
    return np.stack([np.median(z[labels == i], axis=0) for i in range(k)])


def state_spearman(z, data_dir):
    """|Spearman(PC1 of z, true state)| for a simulated set."""
    return spearman_pc1(z, np.load(os.path.join(data_dir, "z_true.npy")))


def state_resolutions(vol_dir, data_dir, apix, threshold=0.5):
    """FSC=threshold resolution (Å) of each map in ``vol_dir`` (sorted *.mrc, one per state, in
    state order) against ``data_dir/gt_volumes/state_KK.mrc``."""
    paths = sorted(glob.glob(os.path.join(vol_dir, "*.mrc")))
    if not paths:
        raise SystemExit("no maps in %s" % vol_dir)
    res = []
    for i, path in enumerate(paths):
        vol, _ = read_mrc(path)
        gt, _ = read_mrc(os.path.join(data_dir, "gt_volumes", "state_%02d.mrc" % i))
        f, c = fsc(vol, gt)
        res.append(resolution_at(f, c, threshold, apix))
    return res
