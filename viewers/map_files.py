"""Map files of the viewers (no Qt): an MRC file -> ``(vol[z, y, x] float32, voxel size in Å)`` and
back, with the engine's MRC reader and writer (the writer: atomic, with the voxel size and a
centred origin)."""
import numpy as np

__all__ = ["read_map", "write_map"]


def read_map(path):
    """Read an MRC map with the engine's reader (:func:`flexplugin.engine.io.mrc.read_mrc`) ->
    ``(float32 vol[z, y, x], voxel size in Å or 0.0)``; a file of one section is a volume one voxel
    deep. ValueError naming the file and the problem for a file the engine does not read (data
    modes other than 0, 1, 2, 6 and 12, a truncated or compressed file)."""
    from flexplugin.engine.errors import InputError
    from flexplugin.engine.io.mrc import read_mrc
    try:
        data, apix = read_mrc(path)
    except InputError as e:
        raise ValueError(str(e)) from None
    return (data[None] if data.ndim == 2 else data), float(apix)


def write_map(path, vol, apix=1.0):
    """Write ``vol`` as a float32 MRC file with voxel size ``apix`` (1 Å when unknown) and the
    origin at its centre voxel, as ``flexplugin decode`` writes maps; returns the path."""
    from flexplugin.engine.io.mrc import write_mrc
    write_mrc(str(path), np.asarray(vol, dtype=np.float32), float(apix or 1.0), origin_centered=True)
    return str(path)
