"""Landscape window: the latent space as a scatter / density plot, selections, decoded maps.

:class:`LandscapeWindow` shows the reduced latent coordinates (``zred``, 2D or 3D: two chosen
axes) of every particle. Points are coloured by any particle attribute (cluster, defocus, a
ground-truth label...); a density image can replace or underlay them. Rectangle and lasso tools
select particles (Shift adds, Ctrl removes); "Create subset" hands the selected particle ids to a
callback, "Save selection" writes them to a text file. A click picks the nearest particle, decodes
the map at its latent point in a worker thread (through a :class:`~.serve_client.DecoderClient`
or any object with ``decode(z_list)``) and shows it in the embedded volume view; "Save map..."
writes it to an MRC file, "Open in ChimeraX" opens it in ChimeraX where ChimeraX is installed.

Every mouse action has a method counterpart (``select_in_rect``, ``select_in_polygon``,
``click_at``, ``set_color_by``...), so scripts and tests drive the window without a mouse.
The plot is drawn by :mod:`.landscape_plot`, selections computed by :mod:`.landscape_selection`,
maps decoded, saved and opened in ChimeraX by :mod:`.landscape_picking` (the window's ``side``
panel: ``side.save_map(path)``, ``side.open_in_chimerax()``).
"""
import time

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from flexplugin.constants import LANDSCAPE_PLOT
from flexplugin.selection import read_ids, write_ids

from . import landscape_selection as selection
from .colors import BASE_RGB, PALETTE, Coloring
from .landscape_picking import MapDecoding, PickPanel, particle_html
from .landscape_plot import LandscapePlot, rasterize_points
from .volume_view import VolumeView

__all__ = ["LandscapeWindow", "rasterize_points", "PALETTE", "NO_COLOR"]

NO_COLOR = "None"
DISPLAY_MODES = ("Points", "Density", "Points + density")


# ----------------------------------------------------------------------------- the window
class LandscapeWindow(QtWidgets.QMainWindow):
    """Interactive latent-space landscape.

    :param zred: ``(N, 2)`` or ``(N, 3)`` reduced latent coordinates (UMAP / PCA).
    :param z: ``(N, zdim)`` latent points, decoded on click (None: no decoding).
    :param ids: ``(N,)`` particle ids (default ``1..N``), what selections return.
    :param attributes: ``{name: (N,) values}`` offered in "Colour by" (integer-like values with few
        distinct levels are shown as categories, named "<attribute> <value>" in the legend, others
        on a continuous colour map). Attributes "z1", "z2"... (latent components) are not repeated
        in the picked-particle panel, which shows the whole z.
    :param decoder: a :class:`~.serve_client.DecoderClient` or any object with ``decode(z_list)``
        returning a list of ``(D, D, D)`` arrays.
    :param on_subset: ``callback(ids, name)`` called by "Create subset".
    :param axes: the two columns of ``zred`` shown.
    :param axis_labels: names of the columns of ``zred`` (e.g. "UMAP 1" or "PCA 1 (61% of variance)";
        default "Dim 1", "Dim 2"...).
    :param color_by: attribute selected at start.
    :param apix: voxel size of decoded maps (default: ``decoder.apix`` when it has one).
    :param mask: optional mask shown over decoded maps.
    :param title: window title.

    Signals: ``selectionChanged(int)`` (count), ``subsetCreated(object ids, str name)``,
    ``mapDecoded(object)`` (a dict: ``index``, ``id``, ``z``, ``map``, ``seconds``),
    ``decodeFailed(str)``.
    """

    selectionChanged = QtCore.pyqtSignal(int)
    subsetCreated = QtCore.pyqtSignal(object, str)
    mapDecoded = QtCore.pyqtSignal(object)
    decodeFailed = QtCore.pyqtSignal(str)

    def __init__(self, zred, z=None, ids=None, attributes=None, decoder=None, on_subset=None,
                 axes=(0, 1), axis_labels=None, color_by=None, apix=None, mask=None, title=None,
                 parent=None):
        super().__init__(parent)
        zred = np.asarray(zred, dtype=np.float64)
        if zred.ndim != 2 or zred.shape[1] < 2:
            raise ValueError("zred must be (N, 2) or (N, 3), got shape %s" % (zred.shape,))
        n = len(zred)
        self.zred = zred
        self.z = None if z is None else np.asarray(z, dtype=np.float32).reshape(n, -1)
        self.ids = np.arange(1, n + 1) if ids is None else np.asarray(ids)
        if len(self.ids) != n or (self.z is not None and len(self.z) != n):
            raise ValueError("zred, z and ids must have one row per particle")
        self.attributes = {}
        for name, values in (attributes or {}).items():
            values = np.asarray(values)
            if len(values) != n:
                raise ValueError("attribute %r has %d values for %d particles" % (name, len(values), n))
            self.attributes[str(name)] = values
        self.decoder = decoder
        self.on_subset = on_subset
        self.axis_labels = list(axis_labels or ["Dim %d" % (i + 1) for i in range(zred.shape[1])])
        self.axes = tuple(axes)
        self.selected = np.zeros(n, dtype=bool)
        self.color_by = NO_COLOR
        self.display_mode = DISPLAY_MODES[0]
        self.point_size = 3 if n > 20000 else 5
        self.last_index = None
        self.last_id = None
        self.last_z = None
        self.last_map = None
        self.last_decode_seconds = None
        self.last_redraw_seconds = None
        self.last_error = None
        self._order = np.random.default_rng(0).permutation(n)   # draw order: no class hides another
        self._cmap = pg.colormap.get("viridis")
        self.decoding_queue = MapDecoding(decoder, self)
        self.decoding_queue.started.connect(lambda request: self.statusBar().showMessage(
            "Decoding the map of particle %s\u2026" % request["id"]))
        self.decoding_queue.finished.connect(self._decoded)

        self.plot_widget = LandscapePlot(self, self._cmap)
        pw = self.plot_widget
        self.view, self.plot, self.points, self.legend, self.colorbar = (pw.view, pw.plot, pw.points,
                                                                         pw.legend, pw.colorbar)
        self.volume_view = VolumeView(apix=apix if apix is not None else getattr(decoder, "apix", None))
        if mask is not None:
            self.volume_view.set_mask(mask)
        self.side = PickPanel(self.volume_view, decodes=decoder is not None and self.z is not None)
        self.pick_label, self.pick_scroll = self.side.label, self.side.scroll
        self._show_pick_info()
        self._build_toolbar()
        self._build_menu()

        splitter = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        splitter.addWidget(self.plot_widget)
        splitter.addWidget(self.side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([760, 560] if not self.volume_view.isHidden() else [1020, 300])
        self.setCentralWidget(splitter)
        self.setWindowTitle(title or "flexplugin \u2014 conformational landscape")
        self.resize(1420, 860)

        self._coords_changed(rescale=True)
        names = [NO_COLOR] + list(self.attributes)
        self.set_display_mode(DISPLAY_MODES[0])
        self.set_color_by(color_by if color_by in names else
                          (list(self.attributes)[0] if self.attributes else NO_COLOR))
        self._update_status()

    # ------------------------------------------------------------------------- construction
    def _build_toolbar(self):
        tb = self.addToolBar("Landscape")
        tb.setMovable(False)
        tb.setToolButtonStyle(QtCore.Qt.ToolButtonTextOnly)
        group = QtWidgets.QActionGroup(self)
        self.mode_actions = {}
        for mode, text, tip in (("pan", "Pan / zoom", "Drag to pan, wheel to zoom; click picks a particle"),
                                ("rect", "Rectangle", "Drag a rectangle to select (Shift adds, Ctrl removes)"),
                                ("lasso", "Lasso", "Draw around particles to select (Shift adds, Ctrl removes)")):
            act = QtWidgets.QAction(text, self, checkable=True, toolTip=tip)
            act.triggered.connect(lambda _, m=mode: self.set_tool(m))
            group.addAction(act)
            tb.addAction(act)
            self.mode_actions[mode] = act
        self.mode_actions["pan"].setChecked(True)
        tb.addAction("Reset view", self.reset_view).setToolTip("Zoom to all particles")
        tb.addSeparator()

        tb.addWidget(QtWidgets.QLabel(" Colour by "))
        self.color_combo = QtWidgets.QComboBox()
        self.color_combo.addItems([NO_COLOR] + list(self.attributes))
        self.color_combo.setMinimumContentsLength(10)
        self.color_combo.currentTextChanged.connect(self.set_color_by)
        tb.addWidget(self.color_combo)
        tb.addWidget(QtWidgets.QLabel("  Show "))
        self.display_combo = QtWidgets.QComboBox()
        self.display_combo.addItems(DISPLAY_MODES)
        self.display_combo.currentTextChanged.connect(self.set_display_mode)
        tb.addWidget(self.display_combo)
        tb.addWidget(QtWidgets.QLabel("  Size "))
        self.size_spin = QtWidgets.QSpinBox()
        self.size_spin.setRange(1, 15)
        self.size_spin.setValue(self.point_size)
        self.size_spin.valueChanged.connect(self.set_point_size)
        tb.addWidget(self.size_spin)
        self.axis_combos = []
        if self.zred.shape[1] > 2:
            tb.addWidget(QtWidgets.QLabel("  Axes "))
            for k in range(2):
                combo = QtWidgets.QComboBox()
                combo.addItems(self.axis_labels)
                combo.setCurrentIndex(self.axes[k])
                combo.currentIndexChanged.connect(lambda _: self.set_axes(self.axis_combos[0].currentIndex(),
                                                                          self.axis_combos[1].currentIndex()))
                tb.addWidget(combo)
                self.axis_combos.append(combo)
        tb.addSeparator()
        tb.addAction("Save selection\u2026", self._save_selection_dialog)
        spacer = QtWidgets.QWidget()
        spacer.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Preferred)
        tb.addWidget(spacer)
        self.subset_button = QtWidgets.QPushButton("Create subset\u2026")
        self.subset_button.setToolTip("Create a particle subset from the selection")
        self.subset_button.setStyleSheet(
            "QPushButton { background: #1f6feb; color: white; font-weight: bold; padding: 4px 12px;"
            " border-radius: 3px; } QPushButton:disabled { background: #9db7dd; }")
        self.subset_button.clicked.connect(self._create_subset_clicked)
        tb.addWidget(self.subset_button)
        self.toolbar = tb

    def _build_menu(self):
        menu = self.menuBar().addMenu("&File")
        self.save_action = menu.addAction("Save selection\u2026", self._save_selection_dialog)
        self.save_action.setShortcut(QtGui.QKeySequence.Save)
        menu.addAction("Load selection\u2026", self._load_selection_dialog)
        menu.addAction("Save plot image\u2026", self._save_image_dialog)
        if self.side.decodes:                              # the map shown: save it or open it
            menu.addSeparator()
            menu.addActions([self.side.save_map_action, self.side.chimerax_action])
            menu.setToolTipsVisible(True)
        menu.addSeparator()
        menu.addAction("Close", self.close).setShortcut(QtGui.QKeySequence.Close)
        sel = self.menuBar().addMenu("&Selection")
        sel.addAction("Select all", lambda: self.set_selection(self.ids))
        sel.addAction("Invert", lambda: self._apply(~self.selected, "replace"))
        sel.addAction("Clear", self.clear_selection).setShortcut(QtCore.Qt.Key_Escape)
        sel.addSeparator()
        sel.addAction("Create subset\u2026", self._create_subset_clicked)

    # ------------------------------------------------------------------------- coordinates
    @property
    def x(self):
        return self.zred[:, self.axes[0]]

    @property
    def y(self):
        return self.zred[:, self.axes[1]]

    def set_axes(self, i, j):
        """Show columns ``i`` and ``j`` of ``zred``."""
        self.axes = (int(i), int(j))
        for combo, a in zip(self.axis_combos, self.axes):
            if combo.currentIndex() != a:
                combo.blockSignals(True)
                combo.setCurrentIndex(a)
                combo.blockSignals(False)
        self._coords_changed(rescale=True)

    def _coords_changed(self, rescale=False):
        self.plot.setLabel("bottom", self.axis_labels[self.axes[0]], color="#222")
        self.plot.setLabel("left", self.axis_labels[self.axes[1]], color="#222")
        self.view.show_shape([])
        self.plot_widget.show_density(self.x, self.y)
        self._redraw_points()
        self._redraw_pick()
        if rescale:
            self.reset_view()

    def reset_view(self):
        """Zoom to all particles."""
        x, y = self.x, self.y
        self.view.setRange(xRange=(x.min(), x.max()), yRange=(y.min(), y.max()), padding=0.05)

    # ------------------------------------------------------------------------- drawing
    def set_color_by(self, name):
        """Colour points by attribute ``name`` (``"None"``: one colour)."""
        name = NO_COLOR if name in (None, "", NO_COLOR) else str(name)
        if name != NO_COLOR and name not in self.attributes:
            raise KeyError("no attribute %r (have: %s)" % (name, ", ".join(self.attributes)))
        self.color_by = name
        if self.color_combo.currentText() != name:
            self.color_combo.blockSignals(True)
            self.color_combo.setCurrentText(name)
            self.color_combo.blockSignals(False)
        self.coloring = Coloring(self.attributes.get(name), self._cmap)
        self._redraw_points()
        self._update_legend()

    def color_names(self):
        """The names offered in "Colour by"."""
        return [NO_COLOR] + list(self.attributes)

    def point_colors(self):
        """(N, 3) uint8 colour of every particle (particle order) as coloured now."""
        c = self.coloring
        if c.rgb is None:
            return np.tile(np.array(BASE_RGB, dtype=np.uint8), (len(self.ids), 1))
        return c.rgb

    def set_display_mode(self, mode):
        """``"Points"``, ``"Density"`` or ``"Points + density"``."""
        if mode not in DISPLAY_MODES:
            raise ValueError("display mode must be one of %s" % (DISPLAY_MODES,))
        self.display_mode = mode
        if self.display_combo.currentText() != mode:
            self.display_combo.blockSignals(True)
            self.display_combo.setCurrentText(mode)
            self.display_combo.blockSignals(False)
        self.plot_widget.set_display_mode(mode)
        self._update_legend()

    def set_point_size(self, size):
        self.point_size = int(size)
        if self.size_spin.value() != size:
            self.size_spin.setValue(int(size))
        self._redraw_points()

    def _redraw_points(self):
        """Colours, selection and coordinates -> the point image (selected points on top)."""
        if not hasattr(self, "coloring"):
            return
        t0 = time.perf_counter()
        self.plot_widget.show_points(self.x, self.y, self.point_colors(), self.selected, self._order,
                                     self.point_size)
        self.last_redraw_seconds = time.perf_counter() - t0

    def _update_legend(self):
        self.plot_widget.show_legend(getattr(self, "coloring", None), self.color_by,
                                     self.display_mode != "Density")

    def _redraw_pick(self):
        i = self.last_index
        if i is None:
            self.plot_widget.show_pick()
        else:
            self.plot_widget.show_pick(self.x[i], self.y[i])

    # ------------------------------------------------------------------------- selection
    def set_tool(self, mode):
        """Mouse tool: ``"pan"``, ``"rect"`` or ``"lasso"``."""
        if mode not in self.mode_actions:
            raise ValueError("tool must be pan, rect or lasso")
        self.view.mode = mode
        self.mode_actions[mode].setChecked(True)

    def _apply(self, mask, how):
        self.selected = selection.combine(self.selected, mask, how)
        self._redraw_points()
        self._update_status()
        self.selectionChanged.emit(int(self.selected.sum()))
        return self.selected_ids()

    def select_in_rect(self, x0, y0, x1, y1, how="replace"):
        """Select the particles inside a rectangle (plot coordinates); returns the selected ids."""
        mask = selection.in_rect(self.x, self.y, x0, y0, x1, y1)
        xa, xb = sorted((float(x0), float(x1)))
        ya, yb = sorted((float(y0), float(y1)))
        self.view.show_shape([(xa, ya), (xb, ya), (xb, yb), (xa, yb)])
        return self._apply(mask, how)

    def select_in_polygon(self, points, how="replace"):
        """Select the particles inside a polygon ``[(x, y), ...]`` (plot coordinates)."""
        mask = selection.in_polygon(self.x, self.y, points)
        self.view.show_shape([tuple(p) for p in np.asarray(points, dtype=np.float64)])
        return self._apply(mask, how)

    def set_selection(self, ids):
        """Select exactly the particles with these ids."""
        return self._apply(np.isin(self.ids, np.asarray(ids)), "replace")

    def clear_selection(self):
        self.view.show_shape([])
        return self._apply(np.zeros(len(self.ids), dtype=bool), "replace")

    def selected_ids(self):
        """Ids of the selected particles (in particle order)."""
        return self.ids[self.selected]

    def save_selection(self, path, name=None):
        """Write the selected ids to a selection file (``flexplugin.selection``); returns the count."""
        ids = self.selected_ids()
        write_ids(path, ids, name)
        self.statusBar().showMessage("Saved %d particle ids to %s" % (len(ids), path), 5000)
        return len(ids)

    def load_selection(self, path):
        """Select the ids listed in a selection file (``flexplugin.selection``: the protocols',
        the subset launcher's or save_selection's)."""
        return self.set_selection(np.array(read_ids(path), dtype=self.ids.dtype))

    def create_subset(self, name=None):
        """Call ``on_subset(ids, name)`` with the selection; returns the ids (None if empty)."""
        ids = self.selected_ids()
        if not len(ids):
            self.statusBar().showMessage("Nothing selected", 5000)
            return None
        name = name or "subset of %d particles" % len(ids)
        if self.on_subset is not None:
            self.on_subset(ids.copy(), name)
        self.subsetCreated.emit(ids.copy(), name)
        self.statusBar().showMessage("Subset \u201c%s\u201d: %d particles" % (name, len(ids)), 8000)
        return ids

    def _create_subset_clicked(self):
        n = int(self.selected.sum())
        if not n:
            QtWidgets.QMessageBox.information(self, "Create subset",
                                              "Select particles first (Rectangle or Lasso tool).")
            return
        name, ok = QtWidgets.QInputDialog.getText(self, "Create subset",
                                                  "Name of the subset (%d particles):" % n,
                                                  text="subset of %d particles" % n)
        if ok:
            self.create_subset(name.strip() or None)

    def _save_selection_dialog(self):
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save selection", "selection.txt",
                                                        "Text (*.txt);;All (*)")
        if path:
            self.save_selection(path)

    def _load_selection_dialog(self):
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load selection", "",
                                                        "Text (*.txt);;All (*)")
        if path:
            self.load_selection(path)

    def _save_image_dialog(self):
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save plot image", LANDSCAPE_PLOT,
                                                        "PNG (*.png)")
        if path:
            self.plot_widget.grab().save(path)

    # ------------------------------------------------------------------------- picking / decoding
    def nearest(self, x, y):
        """Index of the particle nearest to (x, y), measured in screen proportions of the view."""
        return selection.nearest(self.x, self.y, x, y, self.view.viewRange())

    @property
    def decoding(self):
        """True while a map is being decoded (or one is queued)."""
        return self.decoding_queue.busy

    def click_at(self, x, y, wait=True, timeout=120.0):
        """Pick the particle nearest to (x, y) (plot coordinates), decode its map and show it.

        Returns the particle id. With ``wait`` the call returns once the map is shown
        (``last_map``, ``last_z``, ``last_id``); otherwise decoding goes on in a worker thread and
        ``mapDecoded`` is emitted when done.
        """
        i = self.nearest(x, y)
        self.pick_index(i)
        if wait:
            self.wait_for_decode(timeout)
        return self.ids[i]

    def pick_index(self, i):
        """Pick particle number ``i`` (row, not id): mark it and decode its map."""
        self.last_index = int(i)
        self._redraw_pick()
        self._show_pick_info()
        if self.decoder is None or self.z is None:
            return
        self.decoding_queue.request({"index": int(i), "id": self.ids[i], "z": self.z[i].copy()})

    def _decoded(self, request, vol, error, seconds):
        if error is not None:
            self.last_error = "%s" % error
            self.statusBar().showMessage("Decoding failed: %s" % error, 10000)
            self.decodeFailed.emit(self.last_error)
        else:
            self.last_error = None
            self.last_z = request["z"]
            self.last_id = request["id"]
            self.last_map = vol
            self.last_decode_seconds = seconds
            self.side.show_map(vol, request["id"])
            self.statusBar().showMessage("Map of particle %s decoded in %.2f s"
                                         % (request["id"], seconds), 8000)
            self.mapDecoded.emit(dict(request, map=vol, seconds=seconds))

    def wait_for_decode(self, timeout=120.0):
        """Process events until no decoding is in progress; False on timeout."""
        return self.decoding_queue.wait(timeout)

    def _show_pick_info(self):
        i = self.last_index
        if i is None:
            hint = "Click on the landscape to pick the nearest particle%s." % (
                " and decode its map" if self.decoder is not None and self.z is not None else "")
            self.side.show_text("<span style='color:#666'>%s</span>" % hint)
            return
        axes = [(self.axis_labels[a], v) for a, v in zip(self.axes, (self.x[i], self.y[i]))]
        self.side.show_text(particle_html(self.ids[i], axes, None if self.z is None else self.z[i],
                                          {name: values[i] for name, values in self.attributes.items()}))

    # ------------------------------------------------------------------------- misc
    def _update_status(self):
        n, k = len(self.ids), int(self.selected.sum())
        self.statusBar().showMessage("%s particles  \u00b7  %s selected (%.1f%%)"
                                     % (format(n, ","), format(k, ","), 100.0 * k / max(n, 1)))
        self.subset_button.setEnabled(k > 0)

    def closeEvent(self, event):
        self.decoding_queue.close()
        self.side.close_maps()
        self.volume_view.pause()
        super().closeEvent(event)
