"""``flexplugin check``: validate a particle set before spending hours on training.

Reads the metadata, opens every referenced stack (present, readable, not truncated, the same square
box everywhere, every image index in range), checks that poses and CTF values are finite and, with
``scan_images``, reads all images (stack by stack, in chunks) looking for NaN/inf. The first problem
raises :class:`InputError` naming the file (and the particle) concerned.
"""
import numpy as np

from ..errors import InputError
from . import read_particles
from .mrc import ImageSource


def check_particles(path, datadir=None, scan_images=True, passthrough=None, chunk=1024):
    """Check the particle file ``path`` and return a summary dict.

    Keys: ``path``, ``n``, ``box``, ``apix``, ``optics_groups`` (sorted ids, [] when none),
    ``has_ctf``, ``has_poses``, ``stacks`` (number of image stacks), ``images_scanned``.
    """
    table = read_particles(path, datadir=datadir, passthrough=passthrough)
    source = ImageSource(table)
    n = len(table)

    last = np.full(len(table.stacks), -1, dtype=np.int64)
    np.maximum.at(last, table.stack_id, table.index)
    for k in range(len(table.stacks)):
        stack = source.stack(k)
        if last[k] >= stack.n:
            row = int(np.argmax((table.stack_id == k) & (table.index >= stack.n)))
            raise InputError(stack.path, "image %d requested by particle %d of %s, but the stack "
                             "holds %d images" % (table.index[row] + 1, row + 1, table.source, stack.n))

    for name, values in (("rotation", table.rotations), ("shift", table.shifts_A), ("CTF", table.ctf)):
        if values is not None:
            ok = np.isfinite(values.reshape(n, -1)).all(axis=1)
            if not ok.all():
                raise InputError(table.source, "particle %d: %s is not finite" % (np.argmin(ok) + 1, name))

    if scan_images:
        order = np.lexsort((table.index, table.stack_id))      # stack by stack: sequential reads
        for start in range(0, n, chunk):
            rows = order[start:start + chunk]
            ok = np.isfinite(source.get(rows)).all(axis=(1, 2))
            if not ok.all():
                row = int(rows[np.argmin(ok)])
                raise InputError(table.stacks[table.stack_id[row]],
                                 "image %d (particle %d of %s) contains NaN or inf values"
                                 % (table.index[row] + 1, row + 1, table.source))

    groups = [] if table.optics_group is None else sorted(int(g) for g in np.unique(table.optics_group))
    return dict(path=table.source, n=n, box=int(table.box), apix=float(table.apix), optics_groups=groups,
                has_ctf=table.has_ctf, has_poses=table.has_poses, stacks=len(table.stacks),
                images_scanned=bool(scan_images), notes=list(table.notes))


def format_report(report):
    """A few human-readable lines summarising :func:`check_particles`' result."""
    groups = ", ".join(str(g) for g in report["optics_groups"]) or "none"
    return "\n".join([
        "%s: OK" % report["path"],
        "  particles:     %d" % report["n"],
        "  box:           %d px at %.4g Å/px (%.1f Å)" % (report["box"], report["apix"],
                                                      report["box"] * report["apix"]),
        "  image stacks:  %d (all present, indices in range)" % report["stacks"],
        "  optics groups: %s" % groups,
        "  CTF:           %s" % ("yes" if report["has_ctf"] else "no"),
        "  poses:         %s" % ("yes" if report["has_poses"] else "no"),
        "  images:        %s" % ("all finite" if report["images_scanned"] else "not scanned"),
    ] + ["  note: %s" % note for note in report.get("notes", [])])
