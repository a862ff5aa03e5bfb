"""The training loop: resume equals an uninterrupted run, atomic checkpoints, outputs, and the
encode / decode command lines."""
import json
import os

import numpy as np
import pytest
import torch

from cli_helpers import run_cli
from flexplugin.engine.geometry.fourier import fft3_center, ifft3_center
from flexplugin.engine.io import read_mrc
from flexplugin.engine.checkpoints import save_checkpoint
from flexplugin.engine import train as train_mod

# A tiny model on 200 particles cropped to 16 px (6 Å/px): seconds per epoch.
TINY = ["--zdim", 2, "--enc-dim", 32, "--enc-layers", 1, "--dec-dim", 32, "--dec-layers", 1,
        "--batch-size", 16, "--lr", 1e-3, "--box", 16, "--max-particles", 200, "--seed", 7]


def _train(data, out, epochs, *extra):
    assert run_cli("train", "cryodrgn", "--particles", data / "particles.star", "--out", out,
                   "--epochs", epochs, *TINY, *extra) == 0


@pytest.fixture(scope="module")
def straight(homogeneous_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    _train(homogeneous_set, out, 3, "--num-workers", 1)   # the resumed run loads in-process
    return out


def _weights(out):
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    return ck, ck["model"]["weights"]


def test_outputs(straight, homogeneous_set):
    ck, _ = _weights(straight)
    assert ck["epoch"] == 3 and len(ck["rows"]) == 200
    metrics = json.loads((straight / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics["epochs"]] == [1, 2, 3]
    assert all(np.isfinite(m["loss"]) and m["images_per_s"] > 0 for m in metrics["epochs"])
    cfg = json.loads((straight / "config.json").read_text())
    assert cfg["method"] == "cryodrgn" and cfg["zdim"] == 2 and cfg["box"] == 16
    assert abs(cfg["apix"] - 6.0) < 1e-6 and cfg["particles"].endswith("particles.star")
    assert cfg["config"]["enc_dim"] == 32 and cfg["n_train"] == 200 and cfg["n_particles"] == 1500
    z = np.load(straight / "z.npy")
    assert z.shape == (1500, 2) and np.isfinite(z).all()       # all particles, star order
    vol, apix = read_mrc(straight / "consensus.mrc")
    assert vol.shape == (16, 16, 16) and abs(apix - 6.0) < 1e-5
    assert not [f for f in os.listdir(straight) if f.endswith(".tmp")]


def test_resume_equals_straight_run(straight, homogeneous_set, tmp_path):
    _train(homogeneous_set, tmp_path, 2, "--keep-epochs")
    assert (tmp_path / "checkpoints" / "epoch_002.pt").exists()
    assert _weights(tmp_path)[0]["epoch"] == 2
    _train(homogeneous_set, tmp_path, 3, "--resume")
    ck, w = _weights(tmp_path)
    _, w_ref = _weights(straight)
    assert ck["epoch"] == 3
    for k in w_ref:
        assert torch.allclose(w[k], w_ref[k], atol=1e-5), k
    assert np.allclose(np.load(tmp_path / "z.npy"), np.load(straight / "z.npy"), atol=1e-4)
    metrics = json.loads((tmp_path / "metrics.json").read_text())["epochs"]
    ref = json.loads((straight / "metrics.json").read_text())["epochs"]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert np.allclose([m["loss"] for m in metrics], [m["loss"] for m in ref], rtol=1e-4)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"epoch": 1}, path)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="No space left") as err:
        save_checkpoint({"epoch": 2}, path)
    assert err.value.filename == str(path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_encode_decode_cli(straight, homogeneous_set, tmp_path):
    z_path = tmp_path / "z.npy"
    assert run_cli("encode", "--model", straight, "--particles", homogeneous_set / "particles.star",
                   "--out", z_path) == 0
    assert np.allclose(np.load(z_path), np.load(straight / "z.npy"), atol=1e-5)

    assert run_cli("decode", "--model", straight, "--z", "0,0", "--z", "1.5 -1", "--out", tmp_path / "a") == 0
    maps = sorted(os.listdir(tmp_path / "a"))
    assert maps == ["vol_000.mrc", "vol_001.mrc"]
    v0, apix = read_mrc(tmp_path / "a" / "vol_000.mrc")
    assert v0.shape == (16, 16, 16) and abs(apix - 6.0) < 1e-5

    np.savetxt(tmp_path / "z.txt", [[0.0, 0.0]])
    assert run_cli("decode", "--model", straight / "checkpoint.pt", "--z-file", tmp_path / "z.txt",
                   "--out", tmp_path / "b", "--box", 8) == 0
    v, apix = read_mrc(tmp_path / "b" / "vol_000.mrc")
    assert v.shape == (8, 8, 8) and abs(apix - 12.0) < 1e-5
    # The cropped map is the full one low-passed to the sphere |k| < 4 (same scale and origin).
    k = torch.arange(8) - 4
    inside = (k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2) < 16
    small = ifft3_center(torch.where(inside, fft3_center(torch.as_tensor(v0))[4:12, 4:12, 4:12], 0)).real / 8
    assert np.allclose(small.numpy(), v, atol=1e-4 * np.abs(v).max())

    assert run_cli("decode", "--model", straight, "--z", "1,2,3", "--out", tmp_path / "c") == 2


def test_autocast_mode():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert train_mod.autocast_mode("fp32", cpu) == (None, False)
    assert train_mod.autocast_mode("bf16", cpu) == (torch.bfloat16, False)
    assert train_mod.autocast_mode("auto", cuda) == (torch.float16, True)
    assert train_mod.autocast_mode("auto", cpu) == (
        torch.bfloat16 if train_mod.cpu_has_bf16() else None, False)
    assert train_mod.autocast_mode("auto", cpu, cpu_bfloat16=False) == (None, False)
    assert train_mod.autocast_mode("bf16", cpu, cpu_bfloat16=False) == (torch.bfloat16, False)
    assert train_mod.autocast_mode("auto", cuda, cpu_bfloat16=False) == (torch.float16, True)
    with pytest.raises(ValueError):
        train_mod.autocast_mode("fp8", cpu)


def _poison(monkeypatch, batches):
    """Make the gradients (not the loss) of the given batch numbers of each epoch non-finite:
    0 * sqrt(0) adds nothing to the loss, and its gradient 0 * inf is NaN."""
    from flexplugin.engine.methods.cryodrgn import CryoDRGN
    monkeypatch.undo()                  # the unpoisoned step
    step = CryoDRGN.training_step
    count = {"n": 0}

    def poisoned(self, batch):
        out = step(self, batch)
        count["n"] += 1
        if count["n"] in batches:
            zero = next(self.parameters()).reshape(-1)[0] * 0
            out["loss"] = out["loss"] + 0 * torch.sqrt(zero)
        return out
    monkeypatch.setattr(CryoDRGN, "training_step", poisoned)


def test_non_finite_gradients_skip_or_stop(homogeneous_set, tmp_path, monkeypatch, capsys):
    # bfloat16 autocast: a single poisoned step is skipped and counted, the run finishes finite
    _poison(monkeypatch, {2})
    _train(homogeneous_set, tmp_path / "one", 1, "--precision", "bf16")
    assert "1 steps skipped (non-finite gradients)" in capsys.readouterr().out
    assert np.isfinite(np.load(tmp_path / "one" / "z.npy")).all()
    # ... a run of them stops the training with the message
    _poison(monkeypatch, set(range(1, 100)))
    assert run_cli("train", "cryodrgn", "--particles", homogeneous_set / "particles.star", "--out",
                   tmp_path / "run", "--epochs", 2, *TINY, "--precision", "bf16") == 2
    assert "20 steps in a row in bfloat16" in capsys.readouterr().err
    # float32: the first one stops it
    _poison(monkeypatch, {3})
    assert run_cli("train", "cryodrgn", "--particles", homogeneous_set / "particles.star", "--out",
                   tmp_path / "fp32", "--epochs", 1, *TINY, "--precision", "fp32") == 2
    err = capsys.readouterr().err
    assert "gradients became non-finite at epoch 1, batch 3" in err and "lower --lr" in err


def test_non_finite_latents_are_not_written(homogeneous_set, tmp_path, monkeypatch, capsys):
    from flexplugin.engine.methods.cryodrgn import CryoDRGN
    encode = CryoDRGN.encode

    def broken(self, batch):
        enc = encode(self, batch)
        enc.z[0] = float("nan")
        return enc
    monkeypatch.setattr(CryoDRGN, "encode", broken)
    assert run_cli("train", "cryodrgn", "--particles", homogeneous_set / "particles.star", "--out",
                   tmp_path, "--epochs", 1, *TINY) == 2
    assert "non-finite latent values" in capsys.readouterr().err
    assert not (tmp_path / "z.npy").exists() and (tmp_path / "checkpoint.pt").exists()
