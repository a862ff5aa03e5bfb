"""ChimeraX from the viewers (no Qt): where its executable is, and the command line that opens
atomic models coloured by cryoSPHERE segment."""
import shutil

import numpy as np

from .colors import hex_color, segment_colors
from .segment_stats import residue_ranges

__all__ = ["chimerax_executable", "chimerax_models_command"]


def chimerax_executable():
    """Path of a ChimeraX executable on PATH, or None."""
    for name in ("chimerax", "ChimeraX", "chimerax-daily"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def chimerax_models_command(paths, numbers, segments, executable=None):
    """ChimeraX command line opening model files, each residue coloured by its segment (the
    colours of the segments window); None without a ChimeraX executable."""
    exe = executable or chimerax_executable()
    if exe is None or not paths:
        return None
    numbers, segments = np.asarray(numbers), np.asarray(segments)
    colors = segment_colors(np.unique(segments))
    cmds = ["open %s" % " ".join('"%s"' % p for p in paths)]
    models = "#1-%d" % len(paths) if len(paths) > 1 else "#1"
    for k, rgb in colors.items():
        spec = residue_ranges(np.sort(numbers[segments == k])).replace("\u2013", "-").replace(" ", "")
        cmds.append("color %s:%s %s" % (models, spec, hex_color(rgb)))
    if len(paths) > 1:
        cmds.append("tile")
    return [exe, "--cmd", "; ".join(cmds)]
