"""RELION STAR particle files.

:func:`read_star_particles` turns a RELION 3.0, 3.1 or 5 particle file into a
:class:`ParticleTable`; :func:`write_star` always writes RELION 3.1 (``data_optics`` +
``data_particles``), keeping the columns it does not interpret (``table.extra``, ``table.optics``).
"""
import os

import numpy as np

from ..errors import InputError
from ..geometry import so3
from .mrc import find_stack, stack_info
from .starfile import StarBlock, read_star, write_star_blocks
from .table import ParticleTable

CTF_COLUMNS = ("rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle", "rlnVoltage",
               "rlnSphericalAberration", "rlnAmplitudeContrast", "rlnPhaseShift", "rlnCtfBfactor")
ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
PIXEL_SIZE_COLUMNS = ("rlnImagePixelSize", "rlnPixelSize", "rlnDetectorPixelSize", "rlnMagnification")


class _Columns:
    """Per-particle access to a label from the particle loop or, failing that, its optics group."""

    def __init__(self, path, loop, optics, group_row):
        self.path, self.loop, self.optics, self.group_row = path, loop, optics, group_row
        self.used = set()

    def has(self, label):
        return label in self.loop or (bool(self.optics) and label in self.optics[0])

    def strings(self, label):
        self.used.add(label)
        if label in self.loop:
            return self.loop[label]
        return np.array([row[label] for row in self.optics])[self.group_row]

    def floats(self, label, default=None):
        if not self.has(label):
            if default is None:
                raise InputError(self.path, "missing column %s" % label)
            return np.full(len(self.group_row), float(default))
        return _floats(self.strings(label), label, self.path)


def _floats(values, label, path):
    try:
        return np.asarray(values, dtype=np.float64)
    except ValueError:
        bad = next(i for i, v in enumerate(values) if not _is_float(v))
        raise InputError(path, "column %s: %r (row %d) is not a number" % (label, values[bad], bad + 1))


def _is_float(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


def _ints(values, label, path):
    """Integers that may be written as floats (``32.0``)."""
    x = _floats(values, label, path)
    ok = np.isfinite(x) & (np.abs(x) < 2 ** 53)
    ok[ok] = x[ok] == np.round(x[ok])
    if not ok.all():
        bad = int(np.argmin(ok))
        raise InputError(path, "column %s: %r (row %d) is not an integer" % (label, values[bad], bad + 1))
    return x.astype(np.int64)


def _one_value(x, label, path, what):
    """The single value of per-particle ``x`` (one box, one pixel size for training)."""
    u = np.unique(x)
    if not np.all(np.isfinite(u)) or np.any(u <= 0):
        raise InputError(path, "column %s: invalid %s %s" % (label, what, u[~(np.isfinite(u) & (u > 0))][0]))
    if u.max() - u.min() > 1e-4 * u.max():
        raise InputError(path, "the particles have different %ss (%s: %s); one is needed for training"
                         % (what, label, ", ".join("%g" % v for v in u[:5])))
    return u[0]


def _particle_block(blocks, path):
    named = [b for b in blocks if b.name == "particles" and b.loop is not None]
    loops = named or [b for b in blocks if b.loop is not None and "rlnImageName" in b.loop]
    if not loops:
        if any(b.loop is not None and b.name != "optics" for b in blocks):
            raise InputError(path, "missing column rlnImageName")
        raise InputError(path, "no particle table (data_particles or a loop with rlnImageName)")
    block = loops[0]
    if "rlnImageName" not in block.loop:
        raise InputError(path, "missing column rlnImageName in data_%s" % block.name)
    if block.nrows == 0:
        raise InputError(path, "zero particles in data_%s" % block.name)
    return block


def _optics_groups(blocks, loop, n, path):
    """(optics rows, per-particle group ids or None, per-particle row index into the optics rows)."""
    block = next((b for b in blocks if b.name == "optics" and b.loop is not None), None)
    rows = [] if block is None else [dict(zip(block.loop, r)) for r in zip(*block.loop.values())]
    if not rows:
        groups = _ints(loop["rlnOpticsGroup"], "rlnOpticsGroup", path) if "rlnOpticsGroup" in loop else None
        return [], groups, np.zeros(n, dtype=np.int64)
    if "rlnOpticsGroup" not in block.loop:
        raise InputError(path, "missing column rlnOpticsGroup in data_optics")
    ids = _ints(block.loop["rlnOpticsGroup"], "rlnOpticsGroup", path)
    if "rlnOpticsGroup" in loop:
        groups = _ints(loop["rlnOpticsGroup"], "rlnOpticsGroup", path)
    elif len(rows) == 1:
        groups = np.full(n, ids[0])
    else:
        raise InputError(path, "missing column rlnOpticsGroup in data_particles (%d optics groups)"
                         % len(rows))
    lookup = {int(g): i for i, g in enumerate(ids)}
    unknown = [g for g in np.unique(groups) if int(g) not in lookup]
    if unknown:
        first = int(np.argmax(groups == unknown[0]))
        raise InputError(path, "rlnOpticsGroup %d (particle %d) is not in data_optics (groups: %s)"
                         % (unknown[0], first + 1, ", ".join(str(int(g)) for g in ids)))
    return rows, groups, np.array([lookup[int(g)] for g in groups], dtype=np.int64)


def _image_names(names, path, datadir):
    """``idx@stack`` strings -> (absolute stack paths, stack ids, 0-based indices)."""
    where, raw, sid, idx = {}, [], np.empty(len(names), np.int64), np.empty(len(names), np.int64)
    for i, name in enumerate(names):
        num, at, stack = name.partition("@")
        if not at:
            num, stack = "1", name
        k = where.get(stack)
        if k is None:
            k = where[stack] = len(raw)
            raw.append(stack)
        sid[i] = k
        try:
            number = float(num)            # '000012', and '12.0' from float-writing tools
        except ValueError:
            number = 0.0
        if not (number.is_integer() and 1 <= number <= 2 ** 40):
            raise InputError(path, "rlnImageName %r (particle %d): bad image number" % (name, i + 1))
        idx[i] = int(number) - 1
    return [find_stack(s, path, datadir) for s in raw], sid, idx


def read_star_particles(path, datadir=None):
    """Read a RELION 3.0 / 3.1 / 5 particle STAR file into a :class:`ParticleTable`."""
    path = os.path.abspath(str(path))
    blocks = read_star(path)
    loop = _particle_block(blocks, path).loop
    n = len(loop["rlnImageName"])
    optics, groups, group_row = _optics_groups(blocks, loop, n, path)
    cols = _Columns(path, loop, optics, group_row)
    cols.used.update(("rlnImageName", "rlnOpticsGroup"))
    stacks, stack_id, index = _image_names(loop["rlnImageName"], path, datadir)

    apix = box = None
    pixel = next((c for c in PIXEL_SIZE_COLUMNS[:2] if cols.has(c)), None)
    if pixel:
        apix = _one_value(cols.floats(pixel), pixel, path, "pixel size")
    elif cols.has("rlnDetectorPixelSize") and cols.has("rlnMagnification"):
        ps = cols.floats("rlnDetectorPixelSize") * 1e4 / cols.floats("rlnMagnification")
        apix = _one_value(ps, "rlnDetectorPixelSize", path, "pixel size")
    cols.used.update(c for c in PIXEL_SIZE_COLUMNS if c in loop)
    if cols.has("rlnImageSize"):
        box = int(_one_value(_ints(cols.strings("rlnImageSize"), "rlnImageSize", path),
                             "rlnImageSize", path, "image size"))
    notes = []
    _, _, nx, header_apix = stack_info(stacks[0])
    if box is not None and nx != box and apix is not None:
        # Stacks rescaled after the star was written (cryoDRGN's downsample, for one): the images
        # are what they are; the pixel size scales with them (the field of view is the same).
        notes.append("%s: rlnImageSize is %d but the stacks hold %d x %d images (rescaled after the "
                     "star was written?): reading them at %d px, pixel size %.4g -> %.4g Å"
                     % (path, box, nx, nx, nx, apix, apix * box / nx))
        apix, box = apix * box / nx, nx
    if apix is None or box is None:
        box = nx if box is None else box
        if apix is None and header_apix <= 0:
            raise InputError(path, "no pixel size (no rlnImagePixelSize column and none in the "
                                   "header of %s)" % stacks[0])
        apix = header_apix if apix is None else apix

    rotations = shifts = ctf = None
    if all(cols.has(a) for a in ANGLES):
        rotations = so3.euler_to_matrix(*(cols.floats(a) for a in ANGLES))
    if cols.has("rlnOriginXAngst") or cols.has("rlnOriginYAngst"):
        shifts = np.stack([cols.floats("rlnOriginXAngst", 0), cols.floats("rlnOriginYAngst", 0)], 1)
        cols.used.update(("rlnOriginX", "rlnOriginY"))
    elif cols.has("rlnOriginX") or cols.has("rlnOriginY"):
        shifts = np.stack([cols.floats("rlnOriginX", 0), cols.floats("rlnOriginY", 0)], 1) * apix
    elif rotations is not None:
        shifts = np.zeros((n, 2))
    if cols.has("rlnDefocusU"):
        du = cols.floats("rlnDefocusU")
        ctf = np.stack([du, cols.floats("rlnDefocusV") if cols.has("rlnDefocusV") else du,
                        cols.floats("rlnDefocusAngle", 0)]
                       + [cols.floats(c) for c in CTF_COLUMNS[3:6]]
                       + [cols.floats("rlnPhaseShift", 0), cols.floats("rlnCtfBfactor", 0)], 1)

    extra = {c: np.array(v, dtype=str) for c, v in loop.items() if c not in cols.used}
    return ParticleTable(stacks=stacks, stack_id=stack_id, index=index, apix=float(apix), box=box,
                         rotations=rotations, shifts_A=shifts, ctf=ctf, optics_group=groups,
                         source=path, extra=extra, optics=optics, notes=notes)


def _fmt(values):
    return [repr(float(v)) for v in values]


def _optics_rows(table, ctf_optics):
    """RELION 3.1 optics rows for ``table`` and the per-particle group ids that go with them.

    A group whose particles disagree on voltage, Cs or amplitude contrast is split, the groups then
    being renumbered 1..K.
    """
    n = len(table)
    groups = np.ones(n, np.int64) if table.optics_group is None else np.asarray(table.optics_group)
    keys = np.column_stack([groups] + ([table.ctf[:, 3:6]] if ctf_optics else []))
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    renumber = len(uniq) != len(np.unique(groups))
    raw = {}
    for row in table.optics:
        raw.setdefault(int(float(row.get("rlnOpticsGroup", 0))), row)
    rows = []
    for k, key in enumerate(uniq):
        g = int(key[0])
        new = k + 1 if renumber else g
        row = dict(raw.get(g) or (table.optics[0] if table.optics else {}))
        if renumber or "rlnOpticsGroupName" not in row or g not in raw:
            row["rlnOpticsGroupName"] = "opticsGroup%d" % new
        row["rlnOpticsGroup"] = str(new)
        row["rlnImagePixelSize"] = repr(float(table.apix))
        row["rlnImageSize"] = str(int(table.box))
        row.setdefault("rlnImageDimensionality", "2")
        if ctf_optics:
            row.update(zip(CTF_COLUMNS[3:6], _fmt(key[1:4])))
        rows.append(row)
    if not renumber:
        rows += [r for g, r in raw.items() if g not in set(groups.tolist())]
    labels = list(dict.fromkeys(lab for r in rows for lab in r))
    first = {lab: next(r[lab] for r in rows if lab in r) for lab in labels}
    optics = {lab: [r.get(lab, first[lab]) for r in rows] for lab in labels}
    return optics, (inverse.reshape(-1) + 1 if renumber else groups)


def write_star(path, table, extra_columns=None):
    """Write ``table`` as a RELION 3.1 particle STAR file (atomically).

    Image names are ``idx@stack`` (1-based), the stack path relative to the STAR file's folder when
    it lies inside it, else absolute. ``extra_columns`` ({label: per-particle values}) are added
    after ``table.extra``; they may not replace the columns written from the table itself.
    """
    path = os.path.abspath(str(path))
    folder = os.path.dirname(path)
    names = [os.path.relpath(s, folder) if os.path.commonpath([folder, os.path.abspath(s)]) == folder
             else os.path.abspath(s) for s in table.stacks]
    loop = {"rlnImageName": ["%06d@%s" % (i + 1, names[s]) for s, i in zip(table.stack_id, table.index)]}
    if table.rotations is not None:
        loop.update(zip(ANGLES, (_fmt(a) for a in so3.matrix_to_euler(table.rotations))))
    if table.shifts_A is not None:
        loop["rlnOriginXAngst"] = _fmt(table.shifts_A[:, 0])
        loop["rlnOriginYAngst"] = _fmt(table.shifts_A[:, 1])
    if table.ctf is not None:
        for j in (0, 1, 2, 6, 7):
            loop[CTF_COLUMNS[j]] = _fmt(table.ctf[:, j])
    optics, groups = _optics_rows(table, table.ctf is not None)
    loop["rlnOpticsGroup"] = [str(int(g)) for g in groups]
    for label, values in {**table.extra, **(extra_columns or {})}.items():
        if label in loop:
            raise ValueError("write_star: column %s is written from the table itself" % label)
        values = np.asarray(values)
        if len(values) != len(table):
            raise ValueError("write_star: column %s has %d values for %d particles"
                             % (label, len(values), len(table)))
        loop[label] = _fmt(values) if values.dtype.kind == "f" else [str(v) for v in values]
    write_star_blocks(path, [StarBlock("optics", loop=optics), StarBlock("particles", loop=loop)])
