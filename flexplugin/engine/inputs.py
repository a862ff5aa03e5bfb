"""Optional inputs some methods use: a mask, a reference map, an atomic model.

:func:`load_inputs` reads them once, checks them against the particles (box and pixel size) and
brings maps to the training box. The result is a dict of tensors (``mask`` and ``reference``:
(D, D, D) at the training box; ``atomic_model``: ``coords`` (R, 3) Å of model 1's C-alpha atoms as
in the file, ``electrons`` (R,), ``numbers`` (R,), ``chains`` and ``names`` (lists of R strings:
chain ids and residue names), and ``box_A`` the particles' box in Å, so the
method can place the model in the box frame), which the method keeps and which
travels inside its checkpoint, so a trained model never needs the original files again.

Which inputs a method takes is declared on its class (``Method.uses``, ``Method.requires``); the
training loop refuses an input a method does not use and a missing one it requires.
"""
import numpy as np
import torch

from .errors import InputError
from .geometry.fourier import fourier_crop_3d
from .io import read_mrc

INPUTS = ("mask", "reference", "atomic_model")


def load_map(path, box, apix, train_box, kind):
    """A cubic map of ``box`` voxels at ``apix`` Å (the particles' original sampling, within 1%),
    Fourier-cropped to ``train_box``. Raises InputError naming the file otherwise."""
    vol, vapix = read_mrc(path)
    if vol.ndim != 3 or len(set(vol.shape)) != 1:
        raise InputError(path, "the %s must be a cubic 3D map (got shape %s)" % (kind, vol.shape))
    if vol.shape[0] != box:
        raise InputError(path, "the %s is %d voxels across, the particles are %d pixels"
                         % (kind, vol.shape[0], box))
    if vapix and abs(vapix - apix) > 0.01 * apix:
        raise InputError(path, "the %s has %.4f Å voxels, the particles %.4f Å pixels"
                         % (kind, vapix, apix))
    if not np.isfinite(vol).all():
        raise InputError(path, "the %s holds NaN or infinite values" % kind)
    return fourier_crop_3d(torch.from_numpy(vol).double(), train_box).float()


def load_inputs(method_cls, table, train_box, mask=None, reference=None, atomic_model=None,
                log=print, config=None):
    """Read the optional inputs ``method_cls`` takes -> (dict of tensors, dict of absolute paths).
    ``config`` (the method's Config): its ``ligands`` option decides whether an atomic model's
    heavy ligands are read as pseudo-atoms."""
    import os
    given = dict(mask=mask, reference=reference, atomic_model=atomic_model)
    uses, requires = set(method_cls.uses), set(method_cls.requires)
    for key, path in given.items():
        flag = {"atomic_model": "--structure"}.get(key, "--" + key)
        if path and key not in uses | requires:
            raise InputError(flag, "%s takes no %s" % (method_cls.name, key.replace("_", " ")))
        if not path and key in requires:
            raise InputError(flag, "%s needs an %s" % (method_cls.name, key.replace("_", " "))
                             if key == "atomic_model" else
                             "%s needs a %s" % (method_cls.name, key.replace("_", " ")))
    tensors, paths = {}, {}
    if mask:
        m = load_map(mask, table.box, table.apix, train_box, "mask")
        tensors["mask"] = m.clamp(0, 1)
        if float(tensors["mask"].max()) <= 0:
            raise InputError(mask, "the mask is empty (no voxel above 0)")
    if reference:
        # Fourier cropping keeps voxel values, but a projection sums train_box voxels, not box:
        # scaled so its projections match the (cropped) images as a map reconstructed from them.
        tensors["reference"] = load_map(reference, table.box, table.apix, train_box,
                                        "reference map") * (table.box / train_box)
    if atomic_model:
        from .io.structure import read_structure
        st = read_structure(atomic_model, ligands=bool(getattr(config, "ligands", False)))
        chains = sorted(set(st.chains))
        log("atomic model: %d residues (%d chains: %s)%s%s" % (
            len(st.names), len(chains), " ".join(chains[:12]) + (" ..." if len(chains) > 12 else ""),
            "; %d heavy ligands as pseudo-atoms" % st.ligands if st.ligands else "",
            "; left out %d atoms (%.0f electrons) of ligands, waters and ions" % st.left_out
            if st.left_out[0] else ""))
        tensors["atomic_model"] = {
            "coords": torch.as_tensor(st.coords[0], dtype=torch.float32),
            "electrons": torch.as_tensor(st.electrons, dtype=torch.float32),
            "numbers": torch.as_tensor(st.numbers, dtype=torch.int64),
            "chains": [str(c) for c in st.chains],
            "names": [str(n) for n in st.names],
            "box_A": torch.tensor(table.box * table.apix, dtype=torch.float64)}
    for key, path in given.items():
        if path:
            paths[key] = os.path.abspath(str(path))
    return tensors, paths
