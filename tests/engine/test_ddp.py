"""Data-parallel training: 2 CPU processes (torchrun, gloo) end with the model one process trains
with the same batch size and seed."""
import subprocess
import sys

import numpy as np

from cli_helpers import run_cli
from flexplugin.engine.io import read_mrc

# Homogeneous model (no sampling noise): the same steps up to the order of float sums.
ARGS = ["--zdim", 0, "--dec-dim", 32, "--dec-layers", 1, "--batch-size", 16, "--lr", 1e-3, "--box", 16,
        "--max-particles", 192, "--seed", 3, "--precision", "fp32", "--threads", 1, "--epochs", 2]


def _torchrun(*args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "flexplugin.engine.cli"] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_two_processes_match_one(homogeneous_set, tmp_path):
    star = homogeneous_set / "particles.star"
    proc = _torchrun("train", "cryodrgn", "--particles", star, "--out", tmp_path / "ddp", "--ddp", *ARGS)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "2 processes (DDP)" in proc.stdout
    assert proc.stdout.count("flexplugin train: done") == 1        # process 0 alone reports
    assert run_cli("train", "cryodrgn", "--particles", star, "--out", tmp_path / "one", *ARGS) == 0
    a, _ = read_mrc(tmp_path / "ddp" / "consensus.mrc")
    b, _ = read_mrc(tmp_path / "one" / "consensus.mrc")
    print("DDP vs one process: max |difference| %.2e of max |map| %.2e" % (abs(a - b).max(), abs(b).max()))
    assert np.abs(a - b).max() < 1e-4 * np.abs(b).max()


def test_torchrun_without_ddp_flag_is_refused(homogeneous_set, tmp_path):
    proc = _torchrun("train", "cryodrgn", "--particles", homogeneous_set / "particles.star",
                     "--out", tmp_path, *ARGS)
    assert proc.returncode != 0 and "add --ddp" in proc.stdout + proc.stderr


def test_processes_share_each_global_batch():
    import torch
    from flexplugin.engine.data import RowBatches
    rows = np.arange(37) * 10

    def batches(rank, world):
        return list(RowBatches(rows, 8, torch.Generator().manual_seed(5), rank, world))

    one, shares = batches(0, 1), [batches(r, 3) for r in range(3)]
    assert all(len(s) == len(one) for s in shares)
    for i, batch in enumerate(one):
        parts = [s[i] for s in shares]
        assert all(len(p) >= 1 for p in parts)
        if len(batch) >= 3:            # disjoint shares that make up the batch
            assert sorted(np.concatenate(parts)) == sorted(batch)
