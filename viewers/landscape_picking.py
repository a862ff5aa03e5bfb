"""The picked particle of the landscape window: its map decoded in a worker thread
(:class:`MapDecoding`, the latest click wins) and its values in the side panel
(:class:`PickPanel`: :func:`particle_html` over the map, which it saves or opens in ChimeraX)."""
import time

import numpy as np
from PyQt5 import QtCore, QtWidgets

from .chimerax import NOT_FOUND, ChimeraXMaps, chimerax_executable, chimerax_maps_command
from .map_files import write_map

__all__ = ["MapDecoding", "PickPanel", "FitScrollArea", "particle_html"]

PICK_PANEL_HEIGHT = 240   # pixels; a taller picked-particle panel scrolls
PICK_FIRST = "Click on the landscape first: the map of the particle you pick is shown here."


def is_z_component(name, zdim):
    """True for the attribute names "z1".."z<zdim>" (the latent components offered in "Colour by")."""
    return name[:1] == "z" and name[1:].isdigit() and 1 <= int(name[1:]) <= zdim


class FitScrollArea(QtWidgets.QScrollArea):
    """A vertical scroll area as tall as its word-wrapped widget at the current width, up to
    ``max_height`` pixels (then it scrolls)."""

    def __init__(self, widget, max_height):
        super().__init__()
        self.max_height = max_height
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.NoFrame)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        self.setSizePolicy(QtWidgets.QSizePolicy.Preferred, QtWidgets.QSizePolicy.Fixed)
        self.setWidget(widget)
        self._width = None

    def sizeHint(self):
        hint = super().sizeHint()
        width = self.width() if self.isVisible() else self.widget().sizeHint().width()   # no frame
        height = self.widget().heightForWidth(max(width, 50))
        if height < 0:                                 # not word-wrapped
            height = self.widget().sizeHint().height()
        return QtCore.QSize(hint.width(), min(height + 2, self.max_height))

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if event.size().width() != self._width:      # re-wrapped text: another height
            self._width = event.size().width()
            self.updateGeometry()


# ----------------------------------------------------------------------------- decoding thread
class DecodeThread(QtCore.QThread):
    done = QtCore.pyqtSignal(object, object, object, float)   # request, map, error, seconds

    def __init__(self, decoder, request, parent=None):
        super().__init__(parent)
        self.decoder = decoder
        self.request = request

    def run(self):
        t0 = time.perf_counter()
        try:
            vol = self.decoder.decode([self.request["z"]])[0]
            self.done.emit(self.request, np.asarray(vol, dtype=np.float32), None,
                           time.perf_counter() - t0)
        except Exception as e:                     # shown in the status bar, never raised in Qt
            self.done.emit(self.request, None, e, time.perf_counter() - t0)



class MapDecoding(QtCore.QObject):
    """Decodes maps with ``decoder`` (``decode(z_list)``) one at a time in a worker thread: a
    request made while one is decoded waits, and only the latest waiting one is decoded next.

    A request is a dict with the latent point ``"z"``. Signals: ``started(request)`` and
    ``finished(request, map, error, seconds)`` (in the GUI thread; ``map`` None on error).
    """

    started = QtCore.pyqtSignal(object)
    finished = QtCore.pyqtSignal(object, object, object, float)

    def __init__(self, decoder, parent=None):
        super().__init__(parent)
        self.decoder = decoder
        self._thread = None
        self._pending = None
        self._threads = []

    @property
    def busy(self):
        """True while a map is being decoded (or one is queued)."""
        return self._thread is not None or self._pending is not None

    def request(self, request):
        if self._thread is not None:
            self._pending = request             # only the latest request is decoded next
        else:
            self._start(request)

    def _start(self, request):
        self.started.emit(request)
        thread = DecodeThread(self.decoder, request)
        thread.done.connect(self._done)
        thread.finished.connect(lambda t=thread: self._threads.remove(t) if t in self._threads else None)
        self._threads.append(thread)
        self._thread = thread
        thread.start()

    def _done(self, request, vol, error, seconds):
        self._thread = None
        self.finished.emit(request, vol, error, seconds)
        if self._pending is not None:
            nxt, self._pending = self._pending, None
            self._start(nxt)

    def wait(self, timeout=120.0):
        """Process events until no decoding is in progress; False on timeout."""
        deadline = time.monotonic() + timeout
        app = QtWidgets.QApplication.instance()
        while self.busy:
            if time.monotonic() > deadline:
                return False
            app.processEvents(QtCore.QEventLoop.AllEvents, 20)
            if self._thread is not None:
                self._thread.wait(10)
        app.processEvents()
        return True

    def close(self):
        """Drop the waiting request and let the running one finish."""
        self._pending = None
        for t in list(self._threads):
            t.wait(30000)


def particle_html(particle_id, axes, z=None, attributes=None):
    """The picked-particle panel: a table of its id, its landscape coordinates ``axes``
    (``[(axis label, value), ...]``; "PCA 1", without its variance), its whole ``z`` and its
    ``attributes`` (``{name: value}``; "z1", "z2"... are not repeated)."""
    rows = ["<tr><td><b>Particle id</b></td><td>%s</td></tr>" % particle_id]
    rows += ["<tr><td><b>%s</b></td><td>%.4g</td></tr>" % (label.split(" (")[0], v) for label, v in axes]
    if z is not None:
        values = ",  ".join("z%d&nbsp;=&nbsp;%.3g" % (k + 1, v) for k, v in enumerate(z))   # wraps between values
        rows.append("<tr><td colspan='2'><b>z</b> (%d values)<br>%s</td></tr>" % (len(z), values))
    for name, v in (attributes or {}).items():
        if z is not None and is_z_component(name, len(z)):
            continue                                 # already in the z row
        rows.append("<tr><td><b>%s</b></td><td>%s</td></tr>"
                    % (name, ("%.4g" % v) if isinstance(v, (float, np.floating)) else v))
    return ("<table cellspacing='0' cellpadding='2'>%s</table>"
            % "".join(rows).replace("</b></td>", "</b>&nbsp;&nbsp;&nbsp;</td>"))


class PickPanel(QtWidgets.QWidget):
    """The side panel of the landscape window: the picked particle's values (``label``, in a
    ``scroll`` area as tall as its text up to PICK_PANEL_HEIGHT) over its map, ``volume_view``,
    with ``save_map_action`` ("Save map...") and ``chimerax_action`` ("Open in ChimeraX", enabled
    where a ChimeraX program is found). Without anything to decode (``decodes`` false) the map
    and its buttons are hidden."""

    def __init__(self, volume_view, decodes=True, parent=None):
        super().__init__(parent)
        self.volume_view = volume_view
        self.decodes = decodes
        self.map_name = None                            # file name of the map shown
        self.chimerax = chimerax_executable()
        self.chimerax_maps = ChimeraXMaps()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        box = QtWidgets.QGroupBox("Picked particle")
        form = QtWidgets.QVBoxLayout(box)
        self.label = QtWidgets.QLabel()
        self.label.setTextFormat(QtCore.Qt.RichText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.label.setAlignment(QtCore.Qt.AlignLeft | QtCore.Qt.AlignTop)
        self.scroll = FitScrollArea(self.label, PICK_PANEL_HEIGHT)   # a long z scrolls
        form.addWidget(self.scroll)
        layout.addWidget(box)
        layout.addWidget(volume_view, 1)
        self.save_map_action = QtWidgets.QAction("Save map\u2026", self)
        self.save_map_action.triggered.connect(self._save_map_dialog)
        self.chimerax_action = QtWidgets.QAction("Open in ChimeraX", self)
        self.chimerax_action.triggered.connect(self._chimerax_clicked)
        self.map_buttons = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(self.map_buttons)
        row.setContentsMargins(0, 0, 0, 0)
        for action in (self.save_map_action, self.chimerax_action):
            button = QtWidgets.QToolButton()
            button.setDefaultAction(action)
            row.addWidget(button)
        row.addStretch(1)
        layout.addWidget(self.map_buttons)
        if not decodes:                                 # nothing to decode: no map view
            volume_view.setVisible(False)
            self.map_buttons.setVisible(False)
            layout.addStretch(1)
        self._update_map_actions()

    def show_text(self, html):
        """The panel's text (rich text); the panel takes its height."""
        self.label.setText(html)
        self.scroll.updateGeometry()

    def show_map(self, vol, particle_id):
        """Show the map decoded for particle ``particle_id``."""
        self.map_name = "particle_%s.mrc" % particle_id
        self.volume_view.set_volume(vol, label="particle %s" % particle_id)
        self.volume_view.update_surface_now()
        self._update_map_actions()

    def _update_map_actions(self):
        shown = self.volume_view.volume is not None
        self.save_map_action.setEnabled(shown)
        self.save_map_action.setToolTip("Save the map shown as an MRC file, with its pixel size"
                                        if shown else PICK_FIRST)
        self.chimerax_action.setEnabled(shown and self.chimerax is not None)
        self.chimerax_action.setToolTip(NOT_FOUND if self.chimerax is None else
                                        "Open the map shown in ChimeraX, at the contour level shown here"
                                        if shown else PICK_FIRST)

    def save_map(self, path):
        """Write the map shown to ``path`` (MRC, with its voxel size); returns the path."""
        return write_map(path, self.volume_view.volume, self.volume_view.apix)

    def _save_map_dialog(self):
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save map", self.map_name or "map.mrc",
                                                        "MRC maps (*.mrc);;All (*)")
        if not path:
            return
        try:
            self.save_map(path)
        except OSError as e:
            QtWidgets.QMessageBox.warning(self, "Save map", "The map could not be saved:\n%s" % e)
            return
        self.window().statusBar().showMessage("Saved the map to %s" % path, 8000)

    def open_in_chimerax(self):
        """Write the map shown to a file of the panel's and open it in ChimeraX at the contour
        level shown (without waiting for ChimeraX); returns the command line, None without
        ChimeraX or a map."""
        view = self.volume_view
        if self.chimerax is None or view.volume is None:
            return None
        path = self.chimerax_maps.write(self.map_name or "map.mrc", view.volume, view.apix)
        cmd = chimerax_maps_command([path], view.level, self.chimerax)
        self.chimerax_maps.open(cmd)
        return cmd

    def _chimerax_clicked(self):
        try:
            self.open_in_chimerax()
        except OSError as e:
            QtWidgets.QMessageBox.warning(self, "Open in ChimeraX", "ChimeraX could not be started:\n%s" % e)

    def close_maps(self):
        """Remove the files written for ChimeraX (unless a ChimeraX started here still runs)."""
        self.chimerax_maps.close()
