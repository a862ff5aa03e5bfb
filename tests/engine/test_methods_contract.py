"""Every registered method satisfies the Method contract (methods/base.py), on a tiny data set."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from flexplugin.engine.data import ParticleDataset
from flexplugin.engine.io import read_particles
from flexplugin.engine.methods import METHODS, BaseConfig, DataInfo, Encoding, Method, load_method

BOX = 16


@pytest.fixture(scope="module")
def batch(homogeneous_set):
    table = read_particles(homogeneous_set / "particles.star")
    return ParticleDataset(table, box=BOX)[np.arange(4)]


def _small(cls, zdim):
    """The method with its smallest sensible sizes (fields named *_dim / *_layers shrunk)."""
    cfg = cls.Config(zdim=zdim)
    for f in dataclasses.fields(cfg):
        if f.name.endswith("_dim"):
            setattr(cfg, f.name, 16)
        elif f.name.endswith("_layers"):
            setattr(cfg, f.name, 2)
    return cls(cfg, DataInfo(box=BOX, apix=6.0), _required_inputs(cls))


def _required_inputs(cls):
    """The inputs ``cls`` requires, read by ``load_inputs`` from tiny files: a 12-residue C-alpha
    chain around the box centre, and flat BOX^3 maps at 6 Å."""
    import tempfile
    from types import SimpleNamespace
    from flexplugin.engine.inputs import load_inputs
    from flexplugin.engine.io import write_mrc
    if not cls.requires:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        files = {"atomic_model": tmp + "/model.pdb", "mask": tmp + "/mask.mrc", "reference": tmp + "/ref.mrc"}
        with open(files["atomic_model"], "w") as f:
            for i in range(12):
                f.write("ATOM  %5d  CA  ALA A%4d    %8.3f%8.3f%8.3f  1.00  0.00           C\n"
                        % (i + 1, i + 1, 30.0 + 3.3 * i, 48.0 + 1.9 * (i % 2), 48.0))
        for key in ("mask", "reference"):
            write_mrc(files[key], np.ones((BOX,) * 3, np.float32), 6.0)
        tensors, _ = load_inputs(cls, SimpleNamespace(box=BOX, apix=6.0), BOX,
                                 **{k: files[k] for k in cls.requires})
    return tensors


def test_registry_lists_methods():
    assert METHODS and all(issubclass(c, Method) and c.name == n for n, c in METHODS.items())


@pytest.mark.parametrize("name", sorted(METHODS))
def test_config_is_documented_json_dataclass(name):
    cfg = METHODS[name].Config()
    assert isinstance(cfg, BaseConfig) and dataclasses.is_dataclass(cfg)
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert type(cfg).from_dict(d) == cfg
    with pytest.raises(ValueError):
        type(cfg).from_dict(dict(d, no_such_option=1))


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("zdim", [0, 2])
def test_method_contract(name, zdim, batch, tmp_path):
    torch.manual_seed(0)
    model = _small(METHODS[name], zdim)
    assert model.zdim == zdim
    model.start_epoch(1)
    out = model.training_step(batch)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert all(isinstance(v, float) for k, v in out.items() if k != "loss")
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())

    enc = model.encode(batch)
    assert isinstance(enc, Encoding) and enc.z.shape == (4, zdim)
    if enc.rotations is not None:
        assert enc.rotations.shape == (4, 3, 3)
    if enc.shifts_A is not None:
        assert enc.shifts_A.shape == (4, 2)

    z = torch.zeros(zdim)
    vol = model.decode_volume(z)
    assert vol.shape == (BOX, BOX, BOX) and vol.dtype == torch.float32 and torch.isfinite(vol).all()
    assert model.decode_volume(z, box=BOX // 2).shape == (BOX // 2,) * 3

    path = tmp_path / "model.pt"
    torch.save(model.checkpoint(), path)
    for loaded in (type(model).from_checkpoint(path), load_method(path)):
        assert type(loaded) is type(model) and loaded.config == model.config
        assert loaded.data_info == model.data_info
        assert torch.allclose(loaded.decode_volume(z), vol)
        assert torch.allclose(loaded.encode(batch).z, enc.z)
