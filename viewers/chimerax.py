"""ChimeraX from the viewers (no Qt): where its program is, the command lines that open maps and
atomic models coloured by cryoSPHERE segment, and :class:`ChimeraXMaps`, which writes a window's
maps to files of its own and opens them in ChimeraX without waiting for it."""
import os
import shutil
import subprocess
import tempfile

import numpy as np

from .colors import hex_color, segment_colors
from .map_files import write_map
from .segment_stats import residue_ranges

__all__ = ["chimerax_executable", "chimerax_maps_command", "chimerax_models_command", "launch",
           "ChimeraXMaps", "NOT_FOUND"]

NOT_FOUND = ("ChimeraX was not found. To open maps in ChimeraX, install it and put its program "
             "'chimerax' on the PATH, or set CHIMERA_HOME to its folder (as for Scipion's ChimeraX "
             "plugin), then open this window again.")


def chimerax_executable():
    """Path of the ChimeraX program: ``chimerax`` (or ``ChimeraX``, ``chimerax-daily``) on PATH,
    otherwise ``$CHIMERA_HOME/bin/ChimeraX`` (the folder Scipion's ChimeraX plugin uses); None
    without one."""
    for name in ("chimerax", "ChimeraX", "chimerax-daily"):
        exe = shutil.which(name)
        if exe:
            return exe
    home = os.environ.get("CHIMERA_HOME")
    exe = os.path.join(home, "bin", "ChimeraX") if home else None
    return exe if exe and os.path.isfile(exe) and os.access(exe, os.X_OK) else None


def chimerax_maps_command(paths, level, executable=None):
    """ChimeraX command line opening map files (several as a series) at contour ``level``; None
    without a ChimeraX executable."""
    exe = executable or chimerax_executable()
    if exe is None or not paths:
        return None
    opening = "open %s%s" % (" ".join('"%s"' % p for p in paths), " vseries true" if len(paths) > 1 else "")
    return [exe, "--cmd", "%s; volume #1 level %g" % (opening, level)]


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


def launch(cmd, cwd=None):
    """Start ``cmd`` (a ChimeraX command line) without waiting for it; returns the process."""
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)


class ChimeraXMaps:
    """The maps a window opens in ChimeraX: written to a temporary folder of the window's, opened
    by ChimeraX processes it does not wait for. :meth:`close` removes the folder, unless a ChimeraX
    it started still runs (ChimeraX may read a map file again while it shows it)."""

    def __init__(self):
        self.folder = None
        self.processes = []

    def write(self, name, vol, apix):
        """Write ``vol`` as ``name`` (an .mrc file name) in the folder; returns its path."""
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="flexplugin-maps-")
        return write_map(os.path.join(self.folder, name), vol, apix)

    def open(self, cmd):
        """Start ChimeraX with ``cmd`` (from :func:`chimerax_maps_command`)."""
        self.processes.append(launch(cmd))

    def close(self):
        if self.folder and all(p.poll() is not None for p in self.processes):
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
