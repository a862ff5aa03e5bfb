"""cryoSPARC ``.cs`` particle files (numpy structured arrays written with ``np.save``).

Fields read (cryoSPARC's names): ``uid``; ``blob/path`` (bytes; relative to the cryoSPARC project,
sometimes prefixed with ``>``), ``blob/idx`` (0-based), ``blob/shape``, ``blob/psize_A``;
``ctf/accel_kv``, ``ctf/cs_mm``, ``ctf/amp_contrast``, ``ctf/df1_A``, ``ctf/df2_A``,
``ctf/df_angle_rad``, ``ctf/phase_shift_rad``, ``ctf/bfactor``; ``alignments3D/pose`` (axis-angle
of the transpose of RELION's matrix), ``alignments3D/shift`` (pixels of ``alignments3D/psize_A``,
same sign as RELION's origin). Fields a job did not write itself live in its
``*_passthrough_particles.cs``, joined here on ``uid``.
"""
import os

import numpy as np

from ..errors import InputError
from ..geometry import so3
from .mrc import find_stack, save_npy
from .table import CTF_FIELDS, ParticleTable

BLOB_FIELDS = ("blob/path", "blob/idx", "blob/shape", "blob/psize_A")
# ParticleTable CTF column -> (cryoSPARC field, factor to our unit, default when absent or None)
CTF_MAP = {
    "defocus_u": ("ctf/df1_A", 1.0, None),
    "defocus_v": ("ctf/df2_A", 1.0, None),
    "defocus_angle": ("ctf/df_angle_rad", 180 / np.pi, 0.0),
    "voltage": ("ctf/accel_kv", 1.0, None),
    "cs": ("ctf/cs_mm", 1.0, None),
    "amp_contrast": ("ctf/amp_contrast", 1.0, None),
    "phase_shift": ("ctf/phase_shift_rad", 180 / np.pi, 0.0),
    "bfactor": ("ctf/bfactor", 1.0, 0.0),
}


def _load(path):
    """The structured array of a .cs file, or InputError."""
    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises many kinds (ValueError, EOFError, zipfile errors, ...)
        raise InputError(path, "not a cryoSPARC .cs file (%s)" % e)
    if not isinstance(arr, np.ndarray) or arr.dtype.names is None or arr.ndim != 1:
        raise InputError(path, "not a cryoSPARC .cs file (expected a 1-D array with named fields)")
    return arr


def _fields(path, passthrough):
    """{field name: array} of ``path``, completed by the passthrough file's fields (joined on uid)."""
    main = _load(path)
    fields = {name: main[name] for name in main.dtype.names}
    if passthrough is None:
        return fields
    passthrough = os.path.abspath(str(passthrough))
    extra = _load(passthrough)
    for f, arr in ((path, main), (passthrough, extra)):
        if "uid" not in arr.dtype.names or arr["uid"].ndim != 1 or arr["uid"].dtype.kind not in "iu":
            raise InputError(f, "missing field uid (needed to join with the passthrough file)")
    order = np.argsort(extra["uid"], kind="stable")
    sorted_uid = extra["uid"][order]
    pos = np.minimum(np.searchsorted(sorted_uid, main["uid"]), max(len(sorted_uid) - 1, 0))
    found = sorted_uid[pos] == main["uid"] if len(sorted_uid) else np.zeros(len(main), bool)
    if not found.all():
        raise InputError(passthrough, "uid %d of %s is not in this passthrough file"
                         % (main["uid"][np.argmin(found)], path))
    rows = order[pos]
    fields.update({name: extra[name][rows] for name in extra.dtype.names if name not in fields})
    return fields


def _number(fields, name, path, shape=()):
    """Field ``name`` as float64 with per-row shape ``shape``, or InputError."""
    if name not in fields:
        raise InputError(path, "missing field %s" % name)
    a = fields[name]
    if a.shape[1:] != shape:
        raise InputError(path, "field %s has per-particle shape %s, expected %s" % (name, a.shape[1:], shape))
    try:
        return np.asarray(a, dtype=np.float64)
    except (ValueError, TypeError):
        raise InputError(path, "field %s is not numeric (dtype %s)" % (name, a.dtype))


def _single(x, name, path, what):
    """The one value of ``x`` (positive, the same for every particle)."""
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise InputError(path, "field %s: invalid %s" % (name, what))
    if x.max() - x.min() > 1e-4 * x.max():
        raise InputError(path, "the particles have different %ss (%s from %g to %g); one is needed "
                               "for training" % (what, name, x.min(), x.max()))
    return x.flat[0]


def _stack_names(fields, path):
    if "blob/path" not in fields:
        raise InputError(path, "missing field blob/path")
    raw = fields["blob/path"]
    if raw.ndim != 1 or raw.dtype.kind not in "SU":
        raise InputError(path, "field blob/path is not a string field (dtype %s)" % raw.dtype)
    uniq, inverse = np.unique(raw, return_inverse=True)
    names = []
    for p in uniq.tolist():
        try:
            p = p.decode("utf-8") if isinstance(p, bytes) else p
        except UnicodeDecodeError:
            raise InputError(path, "field blob/path: %r is not UTF-8" % p)
        names.append(p[1:] if p.startswith(">") else p)
    return names, inverse.reshape(-1).astype(np.int64)


def read_cs_particles(path, passthrough=None, datadir=None):
    """Read a cryoSPARC particle ``.cs`` file (plus its passthrough file) into a ParticleTable."""
    path = os.path.abspath(str(path))
    fields = _fields(path, passthrough)
    where = path if passthrough is None else "%s (with passthrough %s)" % (path, passthrough)
    missing = [f for f in BLOB_FIELDS if f not in fields]
    if missing:
        raise InputError(where, "missing field %s%s" % (", ".join(missing), "" if passthrough else
                                                        " (pass the job's *_passthrough_particles.cs)"))
    n = len(fields["blob/path"])
    if n == 0:
        raise InputError(path, "zero particles")
    names, stack_id = _stack_names(fields, where)
    index = _number(fields, "blob/idx", where)
    if not np.all((index >= 0) & (index < 2 ** 40) & (index == np.round(index))):
        raise InputError(where, "field blob/idx: invalid image index")
    shape = _number(fields, "blob/shape", where, (2,))
    if np.any(shape[:, 0] != shape[:, 1]):
        bad = shape[np.argmax(shape[:, 0] != shape[:, 1])]
        raise InputError(where, "images are not square (blob/shape %d x %d)" % tuple(bad))
    box = int(_single(shape[:, 0], "blob/shape", where, "image size"))
    apix = float(_single(_number(fields, "blob/psize_A", where), "blob/psize_A", where, "pixel size"))

    ctf = rotations = shifts = None
    if "ctf/df1_A" in fields:
        cols = []
        for name in CTF_FIELDS:
            field_name, factor, default = CTF_MAP[name]
            if field_name not in fields and default is not None:
                cols.append(np.full(n, default))
            else:
                cols.append(_number(fields, field_name, where) * factor)
        ctf = np.stack(cols, 1)
    if "alignments3D/pose" in fields:
        rotations = so3.cryosparc_pose_to_matrix(_number(fields, "alignments3D/pose", where, (3,)))
        shifts = np.zeros((n, 2))
        if "alignments3D/shift" in fields:
            psize = (_number(fields, "alignments3D/psize_A", where) if "alignments3D/psize_A" in fields
                     else np.full(n, apix))
            shifts = _number(fields, "alignments3D/shift", where, (2,)) * psize[:, None]
    stacks = [find_stack(s, path, datadir) for s in names]
    return ParticleTable(stacks=stacks, stack_id=stack_id, index=index.astype(np.int64), apix=apix,
                         box=box, rotations=rotations, shifts_A=shifts, ctf=ctf, source=path)


def write_cs(path, table, uid=None):
    """Write ``table`` as a cryoSPARC particle .cs file (atomically), float fields as float32.

    ``blob/path`` is relative to the .cs file's folder when the stack lies inside it, else absolute.
    ``uid`` defaults to 0..N-1.
    """
    path = os.path.abspath(str(path))
    n, folder = len(table), os.path.dirname(path)
    names = [(os.path.relpath(s, folder) if os.path.commonpath([folder, os.path.abspath(s)]) == folder
              else os.path.abspath(s)).encode("utf-8") for s in table.stacks]
    fields = [("uid", "<u8", (), np.arange(n) if uid is None else uid),
              ("blob/path", "S%d" % max(1, max(len(s) for s in names)), (),
               np.array(names, dtype=object)[table.stack_id]),
              ("blob/idx", "<u4", (), table.index),
              ("blob/shape", "<u4", (2,), np.full((n, 2), table.box)),
              ("blob/psize_A", "<f4", (), np.full(n, table.apix))]
    if table.ctf is not None:
        for j, name in enumerate(CTF_FIELDS):
            field_name, factor, _ = CTF_MAP[name]
            fields.append((field_name, "<f4", (), table.ctf[:, j] / factor))
    if table.rotations is not None:
        shifts = np.zeros((n, 2)) if table.shifts_A is None else table.shifts_A
        fields += [("alignments3D/pose", "<f4", (3,), so3.matrix_to_cryosparc_pose(table.rotations)),
                   ("alignments3D/shift", "<f4", (2,), shifts / table.apix),
                   ("alignments3D/psize_A", "<f4", (), np.full(n, table.apix))]
    arr = np.zeros(n, dtype=[(name, dt, shp) for name, dt, shp, _ in fields])
    for name, _, _, values in fields:
        arr[name] = values
    save_npy(path, arr)
