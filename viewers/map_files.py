"""Map files of the viewers (no Qt): an MRC file -> ``(vol[z, y, x] float32, voxel size in Å)`` and
back (written by the engine's MRC writer: atomic, with the voxel size and a centred origin)."""
import numpy as np

__all__ = ["read_map", "write_map"]


def read_map(path):
    """Read an MRC map -> ``(float32 vol[z, y, x], voxel size in Å or 0.0)``."""
    import mrcfile
    with mrcfile.open(str(path), permissive=True) as m:
        data = np.asarray(m.data, dtype=np.float32).copy()
        apix = float(m.voxel_size.x) if m.voxel_size is not None else 0.0
    return data, (apix if np.isfinite(apix) else 0.0)


def write_map(path, vol, apix=1.0):
    """Write ``vol`` as a float32 MRC file with voxel size ``apix`` (1 Å when unknown) and the
    origin at its centre voxel, as ``flexplugin decode`` writes maps; returns the path."""
    from flexplugin.engine.io.mrc import write_mrc
    write_mrc(str(path), np.asarray(vol, dtype=np.float32), float(apix or 1.0), origin_centered=True)
    return str(path)
