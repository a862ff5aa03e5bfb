"""Reconstruction methods. ``METHODS`` is the only place that lists them (name -> class)."""
import torch

from .base import BaseConfig, DataInfo, Encoding, Method
from .cryodrgn import CryoDRGN
from .cryosphere import CryoSPHERE
from .hetacumn import HetACUMN
from .hetsiren import HetSIREN

METHODS = {cls.name: cls for cls in (CryoDRGN, HetACUMN, CryoSPHERE, HetSIREN)}

__all__ = ["METHODS", "Method", "BaseConfig", "DataInfo", "Encoding", "load_method"]


def load_method(path_or_dict):
    """The method stored in a checkpoint: a ``Method.checkpoint()`` dict, a training checkpoint
    (which holds one under ``model``), or a file holding either."""
    ck = path_or_dict if isinstance(path_or_dict, dict) else \
        torch.load(path_or_dict, map_location="cpu", weights_only=True)
    ck = ck.get("model", ck)
    if ck.get("method") not in METHODS:
        raise ValueError("unknown method %r in checkpoint (known: %s)"
                         % (ck.get("method"), ", ".join(sorted(METHODS))))
    return METHODS[ck["method"]].from_checkpoint(ck)
