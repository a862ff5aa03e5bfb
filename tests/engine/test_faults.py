"""Faults during training and writing: ``kill -9`` then ``--resume`` ends as an uninterrupted run
(every method), a checkpoint is never left half-written, and an output that cannot be written
(read-only folder, full disk) ends with one clear line and leaves the earlier outputs whole."""
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from cli_helpers import run_cli
from flexplugin.synthetic import two_domain_chain, write_pdb
from flexplugin.engine.io import read_mrc
from flexplugin.engine.methods import METHODS

# Each method at (nearly) its smallest sizes, on 128 particles of 16 px: ~0.2-1 s per epoch.
COMMON = ["--zdim", 2, "--batch-size", 16, "--precision", "fp32", "--threads", 1, "--log-every", 0,
          "--seed", 3]
SMALL = {
    "cryodrgn": ["--enc-dim", 16, "--enc-layers", 1, "--dec-dim", 16, "--dec-layers", 1],
    "hetacumn": ["--enc-dim", 4, "--head-dim", 16, "--dec-dim", 16, "--dec-layers", 1,
                 "--fch-epochs", 1],
    "cryosphere": ["--segments", 2, "--enc-dim", 16, "--enc-layers", 1, "--dec-dim", 16,
                   "--dec-layers", 1, "--kl-warmup", 2, "--kl-cycle", 0],
    "hetsiren": ["--encoder", "mlp", "--enc-box", 16, "--mlp-dim", 16, "--mlp-layers", 1,
                 "--enc-dim", 16, "--enc-layers", 1, "--head-layers", 1, "--dec-layers", 1],
}
EPOCHS = 5
# Resumed vs uninterrupted: the same arithmetic on the same thread count, so equal to float
# rounding (measured: identical); the tolerances only absorb a different summation order.
WEIGHT_ATOL, Z_ATOL, LOSS_RTOL = 1e-5, 1e-4, 1e-4


def test_every_method_is_covered():
    assert set(SMALL) == set(METHODS), "add the new method's smallest settings to SMALL"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """128 particles (D=16, 5 Å/px, CTF, shifts) of a 24-residue two-domain model in 3 states."""
    out = tmp_path_factory.mktemp("faults")
    pdb = write_pdb(out / "input.pdb", two_domain_chain(n_per=12, radius=6.0))
    assert run_cli("simulate", "--out", out / "sim", "--n", 128, "--box", 16, "--apix", 5.0,
                   "--snr", 1.0, "--seed", 2, "--structure", pdb, "--states", 3) == 0
    return out / "sim"


def _args(method, data, out, epochs=EPOCHS, *extra):
    args = ["train", method, "--particles", data / "particles.star", "--out", out, "--epochs", epochs,
            *COMMON, *SMALL[method], *extra]
    if "atomic_model" in METHODS[method].requires:
        args += ["--structure", data / "gt_model.pdb"]
    return [str(a) for a in args]


def _start(args, **kw):
    """The engine command line as a child process (its own session, so it can be killed alone)."""
    return subprocess.Popen([sys.executable, "-m", "flexplugin.engine.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def _epochs_done(out):
    try:
        with open(os.path.join(out, "metrics.json")) as f:
            return len(json.load(f)["epochs"])
    except (OSError, ValueError):
        return 0


def _load(out):
    return torch.load(os.path.join(out, "checkpoint.pt"), map_location="cpu", weights_only=True)


@pytest.mark.parametrize("method", sorted(SMALL))
def test_kill_then_resume_equals_uninterrupted_run(method, data, tmp_path):
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    assert run_cli(*_args(method, data, straight)) == 0

    # kill -9 once the first epoch's checkpoint is written, in the middle of the run.
    proc = _start(_args(method, data, crashed))
    t0 = time.time()
    while _epochs_done(crashed) < 1 and proc.poll() is None and time.time() - t0 < 240:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    log = proc.communicate()[0]
    assert proc.returncode == -signal.SIGKILL
    assert not (crashed / "z.npy").exists()          # killed during training, not after
    ck = _load(crashed)
    completed = log.count("train: epoch ")            # epochs whose end was logged
    assert 1 <= ck["epoch"] < EPOCHS and ck["epoch"] >= completed - 1     # at most one epoch lost
    assert _epochs_done(crashed) in (ck["epoch"], ck["epoch"] - 1)

    assert run_cli(*_args(method, data, crashed, EPOCHS, "--resume")) == 0
    ref, got = _load(straight), _load(crashed)
    assert got["epoch"] == ref["epoch"] == EPOCHS
    for key, w in ref["model"]["weights"].items():
        assert torch.allclose(got["model"]["weights"][key].float(), w.float(), atol=WEIGHT_ATOL), key
    assert np.allclose(np.load(crashed / "z.npy"), np.load(straight / "z.npy"), atol=Z_ATOL)
    vol, _ = read_mrc(crashed / "consensus.mrc")
    vol_ref, _ = read_mrc(straight / "consensus.mrc")
    assert np.allclose(vol, vol_ref, atol=1e-4 * np.abs(vol_ref).max())
    metrics = json.loads((crashed / "metrics.json").read_text())["epochs"]
    metrics_ref = json.loads((straight / "metrics.json").read_text())["epochs"]
    assert [m["epoch"] for m in metrics] == list(range(1, EPOCHS + 1))
    assert np.allclose([m["loss"] for m in metrics], [m["loss"] for m in metrics_ref], rtol=LOSS_RTOL)
    assert not [f for f in os.listdir(crashed) if f.endswith(".tmp")]


def test_checkpoint_survives_kills_during_its_write(data, tmp_path):
    """A large model (a ~30 MB checkpoint, one step per epoch) is killed while ``checkpoint.pt``'s
    temporary file is being written, and at random moments: ``checkpoint.pt`` always loads with
    ``weights_only=True``, and the next ``--resume`` carries on from it."""
    out = tmp_path / "run"
    big = ["train", "cryodrgn", "--particles", data / "particles.star", "--out", out, "--epochs", 10000,
           "--zdim", 2, "--enc-dim", 512, "--enc-layers", 2, "--dec-dim", 512, "--dec-layers", 3,
           "--batch-size", 8, "--max-particles", 8, "--box", 8, "--precision", "fp32", "--threads", 1,
           "--log-every", 0, "--resume"]
    big = [str(a) for a in big]
    rng = random.Random(0)
    during_write, last_epoch = 0, 0
    for attempt in range(4):
        proc = _start(big)
        t0 = time.time()
        # Wait for this run's first new checkpoint, then kill it while the next one is being
        # written (attempts 0-2) or at a random moment (3).
        while _epochs_done(out) <= last_epoch and proc.poll() is None and time.time() - t0 < 180:
            time.sleep(0.005)
        if attempt < 3:
            while proc.poll() is None and time.time() - t0 < 180:
                if any(f.startswith(".checkpoint.pt.") for f in os.listdir(out)):
                    break
        else:
            time.sleep(rng.uniform(0, 0.5))
        assert proc.poll() is None, proc.stdout.read()
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        during_write += any(f.startswith(".checkpoint.pt.") for f in os.listdir(out))
        ck = _load(out)               # never half-written
        assert ck["epoch"] >= last_epoch + 1 and "weights" in ck["model"]
        last_epoch = ck["epoch"]
    assert during_write >= 1          # the kills did land inside a write
    # The next run resumes from the last checkpoint and clears the killed runs' temporaries.
    assert run_cli(*big[:big.index("--epochs") + 1], str(last_epoch + 1),
                   *big[big.index("--epochs") + 2:]) == 0
    assert _load(out)["epoch"] == last_epoch + 1
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


# ------------------------------------------------------------------------------ output safety

def _fsize_limit(limit):
    """preexec_fn: files larger than ``limit`` bytes cannot be written (EFBIG, as a full disk)."""
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def _run(args, preexec_fn=None, env=None):
    proc = subprocess.run([sys.executable, "-m", "flexplugin.engine.cli", *map(str, args)],
                          capture_output=True, text=True, preexec_fn=preexec_fn, env=env, timeout=300)
    return proc.returncode, proc.stderr


def _one_error_line(stderr, name):
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    assert name in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def trained_with(data, tmp_path_factory):
    """method -> the folder of a 2-epoch run of it (trained once per module)."""
    runs = {}

    def get(method):
        if method not in runs:
            out = tmp_path_factory.mktemp("trained_" + method)
            assert run_cli(*_args(method, data, out, 2)) == 0
            runs[method] = out
        return runs[method]
    return get


@pytest.fixture(scope="module")
def trained(trained_with):
    return trained_with("cryodrgn")


def _snapshot(out):
    return {f: (out / f).read_bytes() for f in ("checkpoint.pt", "z.npy", "consensus.mrc", "metrics.json")}


@pytest.mark.parametrize("method", sorted(SMALL))
def test_disk_full_during_training_keeps_earlier_outputs(method, data, trained_with, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained_with(method), out)
    before = _snapshot(out)
    # A file limit below the checkpoint's size: the next checkpoint cannot be written.
    code, err = _run(_args(method, data, out, 4, "--resume"),
                     preexec_fn=_fsize_limit(len(before["checkpoint.pt"]) // 2))
    assert code == 2
    line = _one_error_line(err, str(out / "checkpoint.pt"))
    assert "File too large" in line
    assert _snapshot(out) == before                          # nothing lost, nothing half-written
    assert _load(out)["epoch"] == 2 and not [f for f in os.listdir(out) if f.endswith(".tmp")]


@pytest.mark.parametrize("command", ["encode", "decode", "decode-structures", "analyze", "mask"])
def test_disk_full_in_other_commands_keeps_earlier_outputs(command, data, trained, trained_with, tmp_path):
    """Each command writes once with room, then again with a 1 kB file limit: exit 2, one line
    naming the file, the first outputs intact (decode-structures: a cryoSPHERE model, which
    writes a .pdb beside each .mrc)."""
    out = tmp_path / "out"
    args = {
        "decode-structures": ["decode", "--model", trained_with("cryosphere"), "--z", "0.5,-1",
                              "--out", out],
        "encode": ["encode", "--model", trained, "--particles", data / "particles.star",
                   "--out", out / "z.npy"],
        "decode": ["decode", "--model", trained, "--z", "0.5,-1", "--out", out],
        "analyze": ["analyze", "--model", trained, "--z", trained / "z.npy", "--out", out,
                    "--pcs", 1, "--traversal-points", 2, "--threads", 1],
        "mask": ["mask", "--out", out / "mask.mrc", "--sphere", "--box", 16, "--apix", 5, "--radius", 20],
    }[command]
    assert run_cli(*args) == 0
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert command != "decode-structures" or [p for p in files if p.suffix == ".pdb"]
    before = {p: p.read_bytes() for p in files}
    code, err = _run(args, preexec_fn=_fsize_limit(1024))
    assert code == 2
    _one_error_line(err, str(out))
    assert {p: p.read_bytes() for p in before} == before
    assert not [p for p in out.rglob("*.tmp")]


def _read_only_prefix(folder):
    """A command prefix under which ``folder`` is read-only: none for a normal user (the folder is
    chmod 555), a private read-only bind mount for root (who writes into any folder), or None
    where neither is possible."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        return []
    prefix = ["unshare", "-m", "sh", "-c",
              'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', str(folder)]
    try:
        ok = subprocess.run(prefix + ["true"], capture_output=True, timeout=60).returncode == 0
    except OSError:
        ok = False
    return prefix if ok else None


@pytest.mark.parametrize("method", sorted(SMALL))
def test_read_only_output_folder(method, data, trained_with, tmp_path):
    """Training, encoding and decoding into a read-only folder: exit 2, one line naming the file,
    the earlier outputs unchanged."""
    out = tmp_path / "out"
    shutil.copytree(trained_with(method), out)
    before = _snapshot(out)
    prefix = _read_only_prefix(out)
    if prefix is None:
        pytest.skip("cannot make a folder read-only here (root without mount rights)")
    runs = [(_args(method, data, out, 3, "--resume"), out / "config.json"),
            (["encode", "--model", out, "--particles", data / "particles.star", "--out", out / "z.npy"],
             out / "z.npy"),
            (["decode", "--model", out, "--z", "0,0", "--out", out / "maps"], out / "maps")]
    try:
        for args, name in runs:
            proc = subprocess.run(prefix + [sys.executable, "-m", "flexplugin.engine.cli", *map(str, args)],
                                  capture_output=True, text=True, timeout=300)
            assert proc.returncode == 2, proc.stderr
            line = _one_error_line(proc.stderr, str(name))
            assert "Permission denied" in line or "Read-only file system" in line, line
    finally:
        os.chmod(out, 0o755)
    assert _snapshot(out) == before
