"""Landscape window: the latent space as a scatter / density plot, selections, decoded maps.

:class:`LandscapeWindow` shows the reduced latent coordinates (``zred``, 2D or 3D: two chosen
axes) of every particle. Points are coloured by any particle attribute (cluster, defocus, a
ground-truth label...); a density image can replace or underlay them. Rectangle and lasso tools
select particles (Shift adds, Ctrl removes); "Create subset" hands the selected particle ids to a
callback, "Save selection" writes them to a text file. A click picks the nearest particle, decodes
the map at its latent point in a worker thread (through a :class:`~.serve_client.DecoderClient`
or any object with ``decode(z_list)``) and shows it in the embedded volume view.

Every mouse action has a method counterpart (``select_in_rect``, ``select_in_polygon``,
``click_at``, ``set_color_by``...), so scripts and tests drive the window without a mouse.
"""
import time

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from flexplugin.selection import read_ids, write_ids

from .volume_window import VolumeView

__all__ = ["LandscapeWindow"]

NO_COLOR = "None"
DISPLAY_MODES = ("Points", "Density", "Points + density")
MAX_CATEGORIES = 20
PICK_PANEL_HEIGHT = 240   # pixels; a taller picked-particle panel scrolls
CONTINUOUS_LEVELS = 64
SELECTION_RGB = (230, 50, 40)
PICK_RGB = (255, 215, 0)
BASE_RGB = (40, 90, 160)
PALETTE = [  # categorical colours (Okabe-Ito and Tableau, distinguishable, colour-blind aware)
    (0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0),
    (240, 228, 66), (100, 100, 100), (148, 103, 189), (140, 86, 75), (23, 190, 207),
    (188, 189, 34), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
    (227, 119, 194), (127, 127, 127), (174, 199, 232), (255, 187, 120),
]


# ----------------------------------------------------------------------------- colouring
def _is_z_component(name, zdim):
    """True for the attribute names "z1".."z<zdim>" (the latent components offered in "Colour by")."""
    return name[:1] == "z" and name[1:].isdigit() and 1 <= int(name[1:]) <= zdim


def _is_categorical(values):
    values = np.asarray(values)
    if values.dtype.kind in "biuUSO":
        return len(np.unique(values)) <= MAX_CATEGORIES or values.dtype.kind in "USO"
    finite = values[np.isfinite(values)]
    return finite.size > 0 and np.all(finite == np.round(finite)) and \
        len(np.unique(finite)) <= MAX_CATEGORIES


class _Coloring:
    """Per-point RGB colours plus what the legend / colour bar needs."""

    def __init__(self, values, cmap):
        self.categories = None
        self.range = None
        if values is None:
            self.rgb = None
            return
        values = np.asarray(values)
        n = len(values)
        if _is_categorical(values):
            cats, codes = np.unique(values, return_inverse=True)
            colors = np.array([PALETTE[i % len(PALETTE)] for i in range(len(cats))], dtype=np.uint8)
            self.rgb = colors[codes]
            self.categories = [(c, tuple(int(v) for v in colors[i]), int((codes == i).sum()))
                               for i, c in enumerate(cats)]
        else:
            v = values.astype(np.float64)
            finite = np.isfinite(v)
            lo, hi = (np.percentile(v[finite], [1, 99]) if finite.any() else (0.0, 1.0))
            if hi <= lo:
                hi = lo + 1.0
            self.range = (float(lo), float(hi))
            lut = np.vstack([cmap.getLookupTable(0.0, 1.0, CONTINUOUS_LEVELS)[:, :3],
                             [[160, 160, 160]]]).astype(np.uint8)
            idx = np.full(n, CONTINUOUS_LEVELS, dtype=np.int64)
            idx[finite] = np.clip(((v[finite] - lo) / (hi - lo) * CONTINUOUS_LEVELS).astype(np.int64),
                                  0, CONTINUOUS_LEVELS - 1)
            self.rgb = lut[idx]


# ----------------------------------------------------------------------------- point rendering
def _disk(radius):
    r = int(np.ceil(radius))
    d = [(dx, dy) for dx in range(-r, r + 1) for dy in range(-r, r + 1)
         if dx * dx + dy * dy <= radius * radius + 0.25]
    return np.array(d, dtype=np.int64).reshape(-1, 2)


def _dilate_max(a, offsets):
    """out[i, j] = max over offsets (di, dj) of a[i - di, j - dj] (a grey dilation)."""
    out = a.copy()
    w, h = a.shape
    for dx, dy in offsets:
        if dx == 0 and dy == 0:
            continue
        dst = out[max(dx, 0):w + min(dx, 0), max(dy, 0):h + min(dy, 0)]
        src = a[max(-dx, 0):w + min(-dx, 0), max(-dy, 0):h + min(-dy, 0)]
        np.maximum(dst, src, out=dst)
    return out


def rasterize_points(px, py, rgb, width, height, size, edge=False):
    """Draw points (pixel coordinates, later points on top) as disks of ``size`` pixels into a
    ``(height, width, 4)`` uint8 RGBA image indexed ``[y, x]`` (transparent background).

    Each pixel shows the last point whose disk covers it: the point ranks are written at the
    centres and spread by a maximum filter over the disk, so the cost grows with the image, not
    with the number of points. ``edge`` adds a darker one-pixel rim around each point.
    """
    px = np.asarray(px, dtype=np.int64)
    py = np.asarray(py, dtype=np.int64)
    ok = (px >= 0) & (px < width) & (py >= 0) & (py < height)
    rank = np.full((height, width), -1, dtype=np.int32)
    rank[py[ok], px[ok]] = np.flatnonzero(ok).astype(np.int32)     # later points win
    radius = max(0.0, (size - 1) / 2.0)
    fill = _dilate_max(rank, _disk(radius))
    table = np.zeros((len(px) + 1, 4), dtype=np.uint8)             # row 0: empty (transparent)
    table[1:, :3] = rgb
    table[1:, 3] = 255
    table32 = table.view(np.uint32).ravel()                          # one 4-byte gather per pixel
    img = table32[fill + 1]
    if edge and size >= 4:
        rim = _dilate_max(rank, _disk(radius + 1.0))
        on_rim = rim > fill
        dark = table.copy()
        dark[1:, :3] = (rgb.astype(np.int32) * 3 // 5).astype(np.uint8)
        img[on_rim] = dark.view(np.uint32).ravel()[rim[on_rim] + 1]
    return img.view(np.uint8).reshape(height, width, 4)


class _PointRaster(pg.ImageItem):
    """All particles drawn as one image at the view's screen resolution, redrawn (a few ms for
    1e5 points) whenever the view range, the size or the colours change."""

    def __init__(self, view):
        super().__init__(axisOrder="row-major")
        self._view = view
        self.x = self.y = self.rgb = None
        self.size = 3
        self.edge = False
        self.render_seconds = None
        self._timer = QtCore.QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.redraw)
        view.sigRangeChanged.connect(self.schedule)
        view.sigResized.connect(self.schedule)

    def set_points(self, x, y, rgb, size, edge=False):
        """Points in drawing order (last on top); ``rgb`` (n, 3) uint8."""
        self.x, self.y, self.rgb = np.asarray(x), np.asarray(y), np.asarray(rgb, dtype=np.uint8)
        self.size, self.edge = int(size), bool(edge)
        self.redraw()

    def schedule(self, *args):
        self._timer.start()

    def redraw(self):
        self._timer.stop()
        if self.x is None:
            return
        t0 = time.perf_counter()
        (xa, xb), (ya, yb) = self._view.viewRange()
        rect = self._view.boundingRect()
        scale = 1.0
        widget = self._view.getViewWidget()
        if widget is not None:
            scale = widget.devicePixelRatioF()
        w = max(2, int(rect.width() * scale))
        h = max(2, int(rect.height() * scale))
        sx, sy = (xb - xa) or 1.0, (yb - ya) or 1.0
        px = np.floor((self.x - xa) / sx * w)
        py = np.floor((self.y - ya) / sy * h)
        m = self.size + 2
        keep = (px > -m) & (px < w + m) & (py > -m) & (py < h + m)
        img = rasterize_points(px[keep], py[keep], self.rgb[keep], w, h, self.size * scale, self.edge)
        self.setImage(img, autoLevels=False)
        self.setRect(QtCore.QRectF(xa, ya, sx, sy))
        self.render_seconds = time.perf_counter() - t0


# ----------------------------------------------------------------------------- the plot's view box
class _SelectViewBox(pg.ViewBox):
    """A ViewBox whose left drag draws a rectangle or a lasso, and whose left click picks."""

    def __init__(self, owner, **kwargs):
        super().__init__(**kwargs)
        self.owner = owner
        self.mode = "pan"
        self._points = []
        pen = QtGui.QPen(QtGui.QColor(20, 20, 20))
        pen.setCosmetic(True)
        pen.setWidthF(1.5)
        pen.setStyle(QtCore.Qt.DashLine)
        self.outline = QtWidgets.QGraphicsPathItem()
        self.outline.setPen(pen)
        self.outline.setBrush(QtGui.QBrush(QtGui.QColor(230, 50, 40, 25)))
        self.outline.setZValue(30)
        self.addItem(self.outline, ignoreBounds=True)

    def show_shape(self, points, closed=True):
        path = QtGui.QPainterPath()
        if len(points):
            path.moveTo(QtCore.QPointF(*points[0]))
            for p in points[1:]:
                path.lineTo(QtCore.QPointF(*p))
            if closed:
                path.closeSubpath()
        self.outline.setPath(path)

    def mouseDragEvent(self, ev, axis=None):
        if self.mode == "pan" or ev.button() != QtCore.Qt.LeftButton:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        p = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            start = self.mapSceneToView(ev.buttonDownScenePos())
            self._points = [(start.x(), start.y())]
        if self.mode == "rect":
            x0, y0 = self._points[0]
            pts = [(x0, y0), (p.x(), y0), (p.x(), p.y()), (x0, p.y())]
        else:
            self._points.append((p.x(), p.y()))
            pts = self._points
        self.show_shape(pts, closed=ev.isFinish() or self.mode == "rect")
        if ev.isFinish():
            how = "replace"
            mods = ev.modifiers()
            if mods & QtCore.Qt.ShiftModifier:
                how = "add"
            elif mods & QtCore.Qt.ControlModifier:
                how = "remove"
            if self.mode == "rect":
                (x0, y0), (x1, y1) = pts[0], pts[2]
                self.owner.select_in_rect(x0, y0, x1, y1, how=how)
            elif len(pts) >= 3:
                self.owner.select_in_polygon(pts, how=how)

    def mouseClickEvent(self, ev):
        if ev.button() == QtCore.Qt.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            self.owner.click_at(p.x(), p.y(), wait=False)
        else:
            super().mouseClickEvent(ev)


class _FitScrollArea(QtWidgets.QScrollArea):
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
class _DecodeThread(QtCore.QThread):
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
        self._thread = None
        self._pending = None
        self._threads = []
        self._order = np.random.default_rng(0).permutation(n)   # draw order: no class hides another
        self._cmap = pg.colormap.get("viridis")
        self._density_cmap = pg.ColorMap([0.0, 0.35, 1.0], [(255, 255, 255), (158, 202, 225),
                                                            (8, 48, 107)])   # white = empty

        self._build_plot()
        self.volume_view = VolumeView(apix=apix if apix is not None else getattr(decoder, "apix", None))
        if mask is not None:
            self.volume_view.set_mask(mask)
        self._build_side()
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
    def _build_plot(self):
        self.plot_widget = pg.GraphicsLayoutWidget()
        self.plot_widget.setBackground("w")
        self.view = _SelectViewBox(self, enableMenu=False)
        self.plot = self.plot_widget.addPlot(row=0, col=0, viewBox=self.view)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        for side in ("left", "bottom"):
            ax = self.plot.getAxis(side)
            ax.setPen(pg.mkPen(90, 90, 90))
            ax.setTextPen(pg.mkPen(40, 40, 40))
            ax.enableAutoSIPrefix(False)             # ticks in the coordinates' own units, no "(x0.001)"
        self.plot.setMenuEnabled(False)
        self.density = pg.ImageItem()
        self.density.setZValue(-10)
        self.plot.addItem(self.density)
        self.density_lines = []
        for k in range(5):
            iso = pg.IsocurveItem(level=0.0, pen=pg.mkPen(30, 30, 30, 200, width=1.2))
            iso.setZValue(8)
            self.plot.addItem(iso)
            self.density_lines.append(iso)
        self.points = _PointRaster(self.view)
        self.points.setZValue(0)
        self.plot.addItem(self.points, ignoreBounds=True)     # its rectangle follows the view
        self.plot.hideButtons()
        self.pick = pg.ScatterPlotItem(pxMode=True, size=18, symbol="star",
                                       pen=pg.mkPen(20, 20, 20, width=1.5),
                                       brush=pg.mkBrush(*PICK_RGB))
        self.pick.setZValue(40)
        self.plot.addItem(self.pick)
        self.legend = pg.LegendItem(offset=(-10, 10), labelTextColor=(30, 30, 30),
                                    brush=pg.mkBrush(255, 255, 255, 220), pen=pg.mkPen(180, 180, 180))
        self.legend.setParentItem(self.plot.getViewBox())
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=self._cmap, interactive=False,
                                        width=14, pen=pg.mkPen(90, 90, 90))
        cb_axis = self.colorbar.getAxis("right")
        cb_axis.setTextPen(pg.mkPen(40, 40, 40))
        cb_axis.enableAutoSIPrefix(False)
        cb_axis.setWidth(86)
        cb_axis.setStyle(hideOverlappingLabels=False, autoExpandTextSpace=True)
        self.plot_widget.addItem(self.colorbar, row=0, col=1)

    def _build_side(self):
        self.side = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(self.side)
        layout.setContentsMargins(4, 4, 4, 4)
        box = QtWidgets.QGroupBox("Picked particle")
        form = QtWidgets.QVBoxLayout(box)
        self.pick_label = QtWidgets.QLabel()
        self.pick_label.setTextFormat(QtCore.Qt.RichText)
        self.pick_label.setWordWrap(True)
        self.pick_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.pick_label.setAlignment(QtCore.Qt.AlignLeft | QtCore.Qt.AlignTop)
        self.pick_scroll = _FitScrollArea(self.pick_label, PICK_PANEL_HEIGHT)   # a long z scrolls
        form.addWidget(self.pick_scroll)
        layout.addWidget(box)
        layout.addWidget(self.volume_view, 1)
        if self.decoder is None or self.z is None:      # nothing to decode: no map view
            self.volume_view.setVisible(False)
            layout.addStretch(1)
        self._show_pick_info()

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
        self._update_density()
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
        self.coloring = _Coloring(self.attributes.get(name), self._cmap)
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
        self.points.setVisible(mode != "Density")
        self.density.setVisible(mode == "Density")
        for iso in self.density_lines:
            iso.setVisible(mode == "Points + density")
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
        rgb = self.point_colors().copy()
        rgb[self.selected] = SELECTION_RGB
        order = self._order
        if self.selected.any():
            order = np.concatenate([order[~self.selected[order]], order[self.selected[order]]])
        self.points.set_points(self.x[order], self.y[order], rgb[order], self.point_size,
                               edge=len(order) <= 20000)
        self.last_redraw_seconds = time.perf_counter() - t0

    def _update_density(self, bins=None):
        x, y = self.x, self.y
        bins = bins or int(np.clip(1.5 * np.sqrt(len(x)), 48, 320))
        x0, x1 = float(x.min()), float(x.max())
        y0, y1 = float(y.min()), float(y.max())
        w, h = (x1 - x0) or 1.0, (y1 - y0) or 1.0
        x0, x1, y0, y1 = x0 - 0.05 * w, x1 + 0.05 * w, y0 - 0.05 * h, y1 + 0.05 * h
        hist, _, _ = np.histogram2d(x, y, bins=bins, range=[[x0, x1], [y0, y1]])
        try:
            from scipy.ndimage import gaussian_filter
            hist = gaussian_filter(hist, 1.2)
        except ImportError:
            pass
        img = np.log1p(hist * (50.0 / max(hist.max(), 1e-12)))
        lut = self._density_cmap.getLookupTable(0.0, 1.0, 256)
        self.density.setImage(img, lut=lut, levels=(0, img.max() or 1.0), autoLevels=False)
        self.density.setRect(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
        top = float(img.max()) or 1.0
        t = QtGui.QTransform()
        t.translate(x0, y0)
        t.scale((x1 - x0) / bins, (y1 - y0) / bins)
        for iso, frac in zip(self.density_lines, (0.2, 0.4, 0.6, 0.75, 0.9)):
            iso.setTransform(t)
            iso.setLevel(frac * top)
            iso.setData(img)
        self.density_image = hist

    def _update_legend(self):
        self.legend.clear()
        c = getattr(self, "coloring", None)
        show_points = self.display_mode != "Density"
        cats = c.categories if (c is not None and show_points) else None
        if cats:
            for value, color, count in cats:
                item = pg.ScatterPlotItem(symbol="o", size=9, pen=None, brush=pg.mkBrush(*color))
                name = value if isinstance(value, str) else "%s %s" % (self.color_by, value)
                self.legend.addItem(item, "%s  (%d)" % (name, count))
        self.legend.setVisible(bool(cats))
        layout = self.plot_widget.ci.layout
        if c is not None and c.range is not None and show_points:
            self.colorbar.setVisible(True)
            self.colorbar.setLevels(c.range)
            self.colorbar.setColorMap(self._cmap)
            self.colorbar.getAxis("right").setLabel(self.color_by, color="#222")
            layout.setColumnFixedWidth(1, 126)
        else:
            self.colorbar.setVisible(False)
            layout.setColumnFixedWidth(1, 0)

    def _redraw_pick(self):
        if self.last_index is None:
            self.pick.setData([], [])
        else:
            i = self.last_index
            self.pick.setData([self.x[i]], [self.y[i]])

    # ------------------------------------------------------------------------- selection
    def set_tool(self, mode):
        """Mouse tool: ``"pan"``, ``"rect"`` or ``"lasso"``."""
        if mode not in self.mode_actions:
            raise ValueError("tool must be pan, rect or lasso")
        self.view.mode = mode
        self.mode_actions[mode].setChecked(True)

    def _apply(self, mask, how):
        if how == "replace":
            self.selected = np.asarray(mask, dtype=bool).copy()
        elif how == "add":
            self.selected |= mask
        elif how == "remove":
            self.selected &= ~mask
        else:
            raise ValueError("how must be replace, add or remove")
        self._redraw_points()
        self._update_status()
        self.selectionChanged.emit(int(self.selected.sum()))
        return self.selected_ids()

    def select_in_rect(self, x0, y0, x1, y1, how="replace"):
        """Select the particles inside a rectangle (plot coordinates); returns the selected ids."""
        xa, xb = sorted((float(x0), float(x1)))
        ya, yb = sorted((float(y0), float(y1)))
        x, y = self.x, self.y
        mask = (x >= xa) & (x <= xb) & (y >= ya) & (y <= yb)
        self.view.show_shape([(xa, ya), (xb, ya), (xb, yb), (xa, yb)])
        return self._apply(mask, how)

    def select_in_polygon(self, points, how="replace"):
        """Select the particles inside a polygon ``[(x, y), ...]`` (plot coordinates)."""
        from matplotlib.path import Path
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
            raise ValueError("a polygon needs at least 3 (x, y) points")
        xy = np.column_stack([self.x, self.y])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        inside_box = np.all((xy >= lo) & (xy <= hi), axis=1)
        mask = np.zeros(len(xy), dtype=bool)
        cand = np.flatnonzero(inside_box)
        if len(cand):
            mask[cand] = Path(pts).contains_points(xy[cand])
        self.view.show_shape([tuple(p) for p in pts])
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
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save plot image", "landscape.png",
                                                        "PNG (*.png)")
        if path:
            self.plot_widget.grab().save(path)

    # ------------------------------------------------------------------------- picking / decoding
    def nearest(self, x, y):
        """Index of the particle nearest to (x, y), measured in screen proportions of the view."""
        (xa, xb), (ya, yb) = self.view.viewRange()
        sx, sy = (xb - xa) or 1.0, (yb - ya) or 1.0
        d = ((self.x - x) / sx) ** 2 + ((self.y - y) / sy) ** 2
        return int(np.argmin(d))

    @property
    def decoding(self):
        """True while a map is being decoded (or one is queued)."""
        return self._thread is not None or self._pending is not None

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
        request = {"index": int(i), "id": self.ids[i], "z": self.z[i].copy()}
        if self._thread is not None:
            self._pending = request             # only the latest click is decoded next
        else:
            self._start(request)

    def _start(self, request):
        self.statusBar().showMessage("Decoding the map of particle %s\u2026" % request["id"])
        thread = _DecodeThread(self.decoder, request)
        thread.done.connect(self._decoded)
        thread.finished.connect(lambda t=thread: self._threads.remove(t) if t in self._threads else None)
        self._threads.append(thread)
        self._thread = thread
        thread.start()

    def _decoded(self, request, vol, error, seconds):
        self._thread = None
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
            self.volume_view.set_volume(vol, label="particle %s" % request["id"])
            self.volume_view.update_surface_now()
            self.statusBar().showMessage("Map of particle %s decoded in %.2f s"
                                         % (request["id"], seconds), 8000)
            self.mapDecoded.emit(dict(request, map=vol, seconds=seconds))
        if self._pending is not None:
            nxt, self._pending = self._pending, None
            self._start(nxt)

    def wait_for_decode(self, timeout=120.0):
        """Process events until no decoding is in progress; False on timeout."""
        deadline = time.monotonic() + timeout
        app = QtWidgets.QApplication.instance()
        while self.decoding:
            if time.monotonic() > deadline:
                return False
            app.processEvents(QtCore.QEventLoop.AllEvents, 20)
            if self._thread is not None:
                self._thread.wait(10)
        app.processEvents()
        return True

    def _show_pick_info(self):
        i = self.last_index
        if i is None:
            hint = "Click on the landscape to pick the nearest particle%s." % (
                " and decode its map" if self.decoder is not None and self.z is not None else "")
            self.pick_label.setText("<span style='color:#666'>%s</span>" % hint)
            self.pick_scroll.updateGeometry()
            return
        rows = ["<tr><td><b>Particle id</b></td><td>%s</td></tr>" % self.ids[i]]
        rows += ["<tr><td><b>%s</b></td><td>%.4g</td></tr>" % (self.axis_labels[a].split(" (")[0], v)
                 for a, v in zip(self.axes, (self.x[i], self.y[i]))]       # "PCA 1", without its variance
        if self.z is not None:
            zi = self.z[i]
            values = ",  ".join("z%d&nbsp;=&nbsp;%.3g" % (k + 1, v) for k, v in enumerate(zi))   # wraps between values
            rows.append("<tr><td colspan='2'><b>z</b> (%d values)<br>%s</td></tr>" % (len(zi), values))
        for name, values in self.attributes.items():
            if self.z is not None and _is_z_component(name, self.z.shape[1]):
                continue                                 # already in the z row
            v = values[i]
            rows.append("<tr><td><b>%s</b></td><td>%s</td></tr>"
                        % (name, ("%.4g" % v) if isinstance(v, (float, np.floating)) else v))
        self.pick_label.setText("<table cellspacing='0' cellpadding='2'>%s</table>"
                                % "".join(rows).replace("</b></td>", "</b>&nbsp;&nbsp;&nbsp;</td>"))
        self.pick_scroll.updateGeometry()

    # ------------------------------------------------------------------------- misc
    def _update_status(self):
        n, k = len(self.ids), int(self.selected.sum())
        self.statusBar().showMessage("%s particles  \u00b7  %s selected (%.1f%%)"
                                     % (format(n, ","), format(k, ","), 100.0 * k / max(n, 1)))
        self.subset_button.setEnabled(k > 0)

    def closeEvent(self, event):
        self._pending = None
        for t in list(self._threads):
            t.wait(30000)
        self.volume_view.pause()
        super().closeEvent(event)
