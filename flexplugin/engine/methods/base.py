"""The Method contract: the one face every reconstruction method shows to the engine.

A method is a ``torch.nn.Module`` subclass of :class:`Method` with

- ``name``: its registry key (``methods.METHODS[name] is cls``);
- ``Config``: a dataclass (subclass of :class:`BaseConfig`) of hyper-parameters whose defaults
  come from the method's paper, each documented with its source in the field's comment, defined
  in :mod:`flexplugin.engine.configs` (no torch there: the Scipion forms read the defaults). Fields
  hold plain JSON types (int, float, str, bool, None), so a config round-trips through
  ``config.json`` and ``torch.load(weights_only=True)``; the command line builds one option per
  field (``enc_layers`` -> ``--enc-layers``);
- ``__init__(config, data_info, inputs=None)``: :class:`DataInfo` says what the images are (box,
  pixel size after downsampling, scale); ``inputs`` holds the optional mask / reference map /
  atomic model as tensors (:mod:`flexplugin.engine.inputs`), kept in ``self.inputs`` and saved
  in the checkpoint;
- ``uses`` / ``requires``: which of ``inputs.INPUTS`` the method takes / cannot do without;
- ``needs_poses``: False for methods that estimate poses themselves (their batches then carry
  identity rotations and zero shifts when the particles have no angles);
- ``training_step(batch) -> dict``: ``{"loss": scalar tensor, <name>: float, ...}``; the loop
  calls ``backward`` on ``loss`` and logs the other entries;
- ``encode(batch) -> Encoding``: posterior-mean ``z`` (B, zdim) and, for methods that estimate
  or refine them, rotations (B, 3, 3) (RELION convention) and shifts in Å;
- ``decode_volume(z, box=None) -> (D, D, D)`` real-space map ``vol[z, y, x]`` with the scale and
  orientation of :mod:`flexplugin.engine.reconstruct` (the pixel size is ``data_info.apix *
  data_info.box / D``);
- ``start_epoch(epoch, epochs)``: called by the loop before each epoch with the run's number of
  epochs (schedules);
- ``initialise(dataset, rows, epochs, log)``: called once on a new model (not on resume) before
  training, with the :class:`~flexplugin.engine.data.ParticleDataset`, the training rows and
  the number of epochs, for a start computed from the data and checks of the schedule (default:
  nothing);
- ``write_results(out, z)``: optional method-specific files at the end of training;
- ``state_dict()`` / ``load_state_dict()`` (from nn.Module), ``checkpoint()`` (config + data info
  + weights as plain types) and ``from_checkpoint(path)``.

A batch (see :mod:`flexplugin.engine.data`) is a dict of tensors: ``images`` (B, D, D) real
space, ``rotations`` (B, 3, 3), ``shifts_px`` (B, 2) in pixels of the training box (shifting the
image by +shift centres the particle), ``ctf`` (B, 8) or absent, ``index`` (B,).
"""
import dataclasses
import functools
from dataclasses import dataclass
from typing import Optional

import torch

from ..configs import BaseConfig  # noqa: F401  (re-exported: methods import it from here)


@dataclass
class DataInfo:
    """What the training images are, and how the data set was prepared (so encode can redo it)."""
    box: int                           # training box (pixels, after Fourier cropping)
    apix: float                        # pixel size of the training box (Å)
    scale: float = 1.0                 # images were divided by this (their standard deviation)
    invert: bool = False               # contrast inverted when read
    window: bool = True                # soft circular real-space window applied
    particles: str = ""                # the particle file the model was trained on
    mask: Optional[str] = None         # optional inputs some methods use
    reference: Optional[str] = None
    atomic_model: Optional[str] = None

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


@dataclass
class Encoding:
    z: torch.Tensor                             # (B, zdim) posterior mean
    rotations: Optional[torch.Tensor] = None    # (B, 3, 3) RELION convention, when estimated
    shifts_A: Optional[torch.Tensor] = None     # (B, 2) Å (rlnOriginX/YAngst), when estimated


class Method(torch.nn.Module):
    """Base class; see the module docstring for the contract."""
    name = None
    Config = BaseConfig
    uses = ()             # optional inputs the method takes: "mask", "reference", "atomic_model"
    requires = ()         # inputs it cannot do without
    needs_poses = True    # False: estimates poses itself
    cpu_bfloat16 = True   # precision "auto" may use bfloat16 autocast on CPUs (autocast_mode)

    def __init__(self, config, data_info, inputs=None):
        super().__init__()
        if not isinstance(config, self.Config):
            raise TypeError("%s expects a %s.Config" % (type(self).__name__, type(self).__name__))
        self.config = config
        self.data_info = data_info
        self.inputs = dict(inputs or {})
        self.epoch = 0
        self.epochs = 0         # the run's number of epochs, set by start_epoch

    @property
    def zdim(self):
        return self.config.zdim

    def start_epoch(self, epoch, epochs=0):
        self.epoch = epoch
        self.epochs = epochs

    def initialise(self, dataset, rows, epochs, log=print):
        """A start computed from the training data (new models only); nothing by default."""

    def training_step(self, batch):
        raise NotImplementedError

    def parameter_groups(self):
        """The optimizer's parameter groups (dicts of ``params`` and optionally ``lr_scale``, a
        factor on the run's learning rate); by default one group of every parameter."""
        return [dict(params=list(self.parameters()))]

    def settle(self, z, log=print):
        """Called once at the end of training with every particle's latent vector as ``encode``
        gives it (N, zdim); returns the z to write. A method whose latent has no fixed scale or
        orientation may re-express it here, after which ``encode`` gives and ``decode_volume``
        takes the new z (the checkpoint is then written again); by default ``z`` unchanged."""
        return z

    def write_results(self, out, z):
        """Method-specific result files written into ``out`` at the end of training, given every
        particle's latent vector ``z`` (N, zdim) (default: none)."""

    def forward(self, batch):
        """The training step (so DistributedDataParallel, which wraps ``forward``, can drive it)."""
        return self.training_step(batch)

    def encode(self, batch):
        raise NotImplementedError

    def decode_volume(self, z, box=None):
        raise NotImplementedError

    def decode_box(self, box):
        """The box of a decoded map: the training box, or a smaller even one (Fourier-cropped
        sampling, larger voxels)."""
        d0 = self.data_info.box
        d = d0 if box is None else int(box)
        if d > d0 or d % 2:
            raise ValueError("decode box must be even and at most the training box %d" % d0)
        return d

    def checkpoint(self):
        """Everything needed to rebuild the model, as types ``torch.load(weights_only=True)`` reads."""
        return {"method": self.name, "config": self.config.to_dict(),
                "data_info": self.data_info.to_dict(), "inputs": self.inputs,
                "weights": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, path_or_dict):
        """Rebuild a method from ``checkpoint()`` output or a file holding it (``torch.save``)."""
        ck = path_or_dict if isinstance(path_or_dict, dict) else \
            torch.load(path_or_dict, map_location="cpu", weights_only=True)
        if ck["method"] != cls.name:
            raise ValueError("checkpoint of method %r, not %r" % (ck["method"], cls.name))
        model = cls(cls.Config.from_dict(ck["config"]), DataInfo.from_dict(ck["data_info"]),
                    ck.get("inputs"))
        model.load_state_dict(ck["weights"])
        return model


@functools.lru_cache(maxsize=None)
def cpu_has_bf16():
    """True when the CPU multiplies bfloat16 matrices in hardware: AMX tiles (``amx_bf16``) or
    AVX-512 BF16 dot products (``avx512_bf16``) (Linux: /proc/cpuinfo flags). On both a D=64
    cryoDRGN training step runs ~2x faster under bfloat16 autocast than in float32. Read once
    per process (every decode asks)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool({"amx_bf16", "avx512_bf16"} & set(line.split()))
    except OSError:
        pass
    return False


def autocast_mode(precision, device, cpu_bfloat16=True):
    """(autocast dtype or None, gradient scaling) for ``Config.precision`` on ``device``;
    ``cpu_bfloat16``: the method's ``Method.cpu_bfloat16`` (False: "auto" is float32 on CPUs)."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError("precision must be auto, fp32 or bf16 (got %r)" % precision)
    if precision == "fp32":
        return None, False
    if precision == "bf16":
        return torch.bfloat16, False
    if device.type == "cuda":
        return torch.float16, True
    return (torch.bfloat16 if device.type == "cpu" and cpu_bfloat16 and cpu_has_bf16() else None), False
