"""Volume window: orthogonal slices, mask overlay, contour level, isosurface and traversal movies.

- :class:`VolumeView` (``QWidget``, in :mod:`.volume_view`): the viewer itself, also embedded by
  the landscape window.
- :class:`VolumeWindow` (``QMainWindow``): a :class:`VolumeView` with a File menu (open map,
  open mask, save image) and, where ChimeraX is found, "Open in ChimeraX".
- :func:`read_map`: an MRC file -> ``(vol[z, y, x] float32, voxel size in Å)``.

Arrays follow the project's convention ``vol[z, y, x]``; the XY plane is shown with x to the
right and y up.
"""
import os

import numpy as np
from PyQt5 import QtGui, QtWidgets

from .chimerax import ChimeraXMaps, chimerax_executable, chimerax_maps_command
from .map_files import read_map, write_map
from .volume_panels import isosurface_mesh
from .volume_view import VolumeView

__all__ = ["VolumeView", "VolumeWindow", "read_map", "write_map", "chimerax_executable",
           "isosurface_mesh"]


# ----------------------------------------------------------------------------- the window
class VolumeWindow(QtWidgets.QMainWindow):
    """A window around :class:`VolumeView`.

    :param volumes: a ``(D, D, D)`` array, a list of arrays (a series), a map file path or a list
        of paths.
    :param labels: one text per map of a series.
    :param mask: a mask array or file path (optional).
    :param apix: voxel size in Å (read from the files when paths are given).
    :param title: window title.
    :param level: contour / isosurface level (None: automatic).
    """

    def __init__(self, volumes=None, labels=None, mask=None, apix=None, title=None, level=None,
                 parent=None):
        super().__init__(parent)
        self.paths = []
        self._chimerax_maps = ChimeraXMaps()
        vols = None
        if volumes is not None:
            vols, apix, self.paths = self._load(volumes, apix)
        if isinstance(mask, (str, os.PathLike)):
            mask = read_map(mask)[0]
        self.view = VolumeView(vols, labels=labels, mask=mask, apix=apix, level=level)
        self.setCentralWidget(self.view)
        self.setWindowTitle(title or "flexplugin \u2014 volume viewer")
        self.resize(980, 900)
        self._build_menu()
        self.view.frameChanged.connect(lambda _: self.statusBar().showMessage(self._status()))
        self.statusBar().showMessage(self._status())

    @staticmethod
    def _load(volumes, apix):
        if isinstance(volumes, (str, os.PathLike)):
            volumes = [volumes]
        if isinstance(volumes, np.ndarray):
            return volumes, apix, []
        volumes = list(volumes)
        if volumes and isinstance(volumes[0], (str, os.PathLike)):
            vols = []
            for p in volumes:
                v, a = read_map(p)
                vols.append(v)
                apix = apix or a or None
            return vols, apix, [str(p) for p in volumes]
        return volumes, apix, []

    @classmethod
    def from_files(cls, paths, mask=None, labels=None, title=None):
        """A window for map files (a series when several)."""
        return cls(paths, labels=labels, mask=mask, title=title)

    def _status(self):
        """The map shown now: its label, file and place in the series."""
        n = self.view.n_frames
        if not n:
            return "Open a map with File \u2192 Open map"
        i = self.view.frame
        parts = [self.view.frame_text()]
        if i < len(self.paths):
            parts.append(os.path.basename(self.paths[i]))
        parts.append("map %d of %d" % (i + 1, n) if n > 1 else "")
        return "  \u00b7  ".join(p for p in parts if p) or "1 map"

    def _build_menu(self):
        menu = self.menuBar().addMenu("&File")
        act = menu.addAction("Open map\u2026", self._open_dialog)
        act.setShortcut(QtGui.QKeySequence.Open)
        menu.addAction("Open mask\u2026", self._open_mask_dialog)
        menu.addAction("Save image\u2026", self._save_image_dialog)
        self.chimerax_action = None
        if chimerax_executable():
            menu.addSeparator()
            self.chimerax_action = menu.addAction("Open in ChimeraX", self.open_in_chimerax)
        menu.addSeparator()
        menu.addAction("Close", self.close).setShortcut(QtGui.QKeySequence.Close)
        view = self.menuBar().addMenu("&View")
        view.addAction("Play / pause", lambda: self.view.play_button.toggle()).setShortcut("Space")
        view.addAction("Next frame", self.view.next_frame).setShortcut("Right")

    def open_files(self, paths):
        vols, apix, self.paths = self._load(paths, None)
        self.view.set_volumes(vols, apix=apix)
        self.statusBar().showMessage(self._status())

    def _open_dialog(self):
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "Open map(s)", "",
                                                          "MRC maps (*.mrc *.map *.mrcs);;All (*)")
        if paths:
            self.open_files(sorted(paths))

    def _open_mask_dialog(self):
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open mask", "",
                                                        "MRC maps (*.mrc *.map);;All (*)")
        if path:
            self.view.set_mask(read_map(path)[0])

    def _save_image_dialog(self):
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save image", "volume.png",
                                                        "PNG (*.png)")
        if path:
            self.grab().save(path)

    def chimerax_command(self):
        """The ChimeraX command line for the maps shown (None without ChimeraX)."""
        exe = chimerax_executable()
        if exe is None or not self.view.n_frames:
            return None
        paths = self.paths or [self._chimerax_maps.write("map_%03d.mrc" % i, v, self.view.apix)
                               for i, v in enumerate(self.view.volumes)]
        return chimerax_maps_command(paths, self.view.level, exe)

    def open_in_chimerax(self):
        cmd = self.chimerax_command()
        if cmd:
            self._chimerax_maps.open(cmd)

    def closeEvent(self, event):
        self.view.pause()
        self._chimerax_maps.close()
        super().closeEvent(event)
