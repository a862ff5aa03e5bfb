"""Training checkpoints and the run's JSON files on disk: written atomically and flushed (a kill
or a full disk leaves the previous file whole), read with ``weights_only`` and checked, with
errors that name the file."""
import errno
import glob
import json
import os
import re

import torch

from .errors import InputError
from .io.mrc import atomic_path

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(obj, path):
    """``torch.save`` to ``path`` atomically, flushed to the disk before it replaces the old file:
    a kill (or a full disk) during the write leaves the previous checkpoint whole. A failed write
    raises OSError naming ``path`` (torch reports it as a RuntimeError)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        try:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        except RuntimeError as exc:
            cause = exc.__context__ if isinstance(exc.__context__, OSError) else None
            raise OSError(cause.errno if cause else errno.EIO,
                          (cause.strerror if cause else None) or "write failed (%s)" % exc,
                          os.path.abspath(str(path))) from exc


def remove_stale_temporaries(out):
    """Temporary files left by a run killed while writing (``.<name>.<pid>.tmp``)."""
    for tmp in glob.glob(os.path.join(glob.escape(out), ".*.tmp")):
        if re.fullmatch(r"\..+\.\d+\.tmp", os.path.basename(tmp)):
            try:
                os.remove(tmp)
            except OSError:
                pass


def checkpoint_problem(exc):
    """Why a checkpoint could not be loaded, in a few words (not torch's advice to load it with
    ``weights_only=False``, which would run whatever code a crafted file holds)."""
    import pickle
    text = str(exc).split("\n")[0]
    if isinstance(exc, (pickle.UnpicklingError, EOFError)) or "weights_only" in text or \
            "zip archive" in text or "central directory" in text:
        return "damaged, or not written by flexplugin"
    return "%s: %s" % (type(exc).__name__, text[:200])


def load_checkpoint(path, method):
    """The training checkpoint ``path`` (InputError when it is unreadable or of another method)."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        name = ck["model"]["method"]
        ck["rows"], ck["epoch"], ck["metrics"], ck["rng"]["sampler"]
    except Exception as exc:   # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise InputError(path, "cannot read the training checkpoint (%s); remove it (or drop "
                               "--resume) to train from scratch" % checkpoint_problem(exc))
    if method is not None and name != method:
        raise InputError(path, "holds a %s model, not %s: resume with 'train %s' or use another "
                               "--out" % (name, method, name))
    return ck


def write_json(obj, path):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
