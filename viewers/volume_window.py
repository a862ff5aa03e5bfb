"""Volume window: orthogonal slices, mask overlay, contour level, isosurface and traversal movies.

- :class:`VolumeView` (``QWidget``): the viewer itself, also embedded by the landscape window.
  Four panels: the three orthogonal planes through the current voxel (with slice sliders, contour
  at the current level and an optional tinted mask) and a shaded isosurface at that level.
  For a series of maps (a traversal) a play / pause button and a frame slider play it as a movie.
- :class:`VolumeWindow` (``QMainWindow``): a :class:`VolumeView` with a File menu (open map,
  open mask, save image) and, where a ``chimerax`` executable is on PATH, "Open in ChimeraX".
- :func:`read_map`: an MRC file -> ``(vol[z, y, x] float32, voxel size in Å)``.

Arrays follow the project's convention ``vol[z, y, x]``; the XY plane is shown with x to the
right and y up.
"""
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

__all__ = ["VolumeView", "VolumeWindow", "read_map", "write_map", "chimerax_executable",
           "isosurface_mesh"]

MASK_RGB = (255, 140, 0)
CONTOUR_PEN = (0, 200, 255)
PANEL_BG = "#111418"
SURFACE_COLOR = "#c9d6e3"
MAX_SURFACE_DIM = 72      # larger maps are binned before marching cubes (interactive speed)

COLORMAPS = ("Gray", "Inferno", "Viridis", "Magma")
PLANES = (  # name, axis of vol[z, y, x] held fixed, (horizontal, vertical) labels
    ("XY", 0, ("X", "Y")),
    ("XZ", 1, ("X", "Z")),
    ("YZ", 2, ("Y", "Z")),
)


# ----------------------------------------------------------------------------- files
def read_map(path):
    """Read an MRC map -> ``(float32 vol[z, y, x], voxel size in Å or 0.0)``."""
    import mrcfile
    with mrcfile.open(str(path), permissive=True) as m:
        data = np.asarray(m.data, dtype=np.float32).copy()
        apix = float(m.voxel_size.x) if m.voxel_size is not None else 0.0
    return data, (apix if np.isfinite(apix) else 0.0)


def write_map(path, vol, apix=1.0):
    """Write ``vol`` as a float32 MRC file with voxel size ``apix``."""
    import mrcfile
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(np.ascontiguousarray(vol, dtype=np.float32))
        m.voxel_size = float(apix or 1.0)
    return str(path)


def chimerax_executable():
    """Path of a ChimeraX executable on PATH, or None."""
    for name in ("chimerax", "ChimeraX", "chimerax-daily"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


# ----------------------------------------------------------------------------- geometry
def isosurface_mesh(vol, level, max_dim=MAX_SURFACE_DIM):
    """Triangle mesh of the ``level`` isosurface: ``(verts (n, 3) as (x, y, z) voxels, faces)``.

    Uses scikit-image's marching cubes when installed, pyqtgraph's otherwise; maps larger than
    ``max_dim`` are binned first. Empty arrays when the level is outside the map's range.
    """
    vol = np.asarray(vol, dtype=np.float32)
    step = max(1, int(np.ceil(max(vol.shape) / float(max_dim))))
    if step > 1:
        d = [s - s % step for s in vol.shape]
        v = vol[:d[0], :d[1], :d[2]]
        v = v.reshape(d[0] // step, step, d[1] // step, step, d[2] // step, step).mean(axis=(1, 3, 5))
    else:
        v = vol
    if not (v.min() < level < v.max()):
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=int)
    try:
        from skimage.measure import marching_cubes
        verts, faces, _, _ = marching_cubes(v, level=level)
        zyx = verts
    except ImportError:
        verts, faces = pg.functions.isosurface(v, level)   # pyqtgraph returns (axis0, axis1, axis2)
        zyx = np.asarray(verts, dtype=np.float64)
    zyx = (zyx + 0.5) * step - 0.5
    return zyx[:, ::-1].copy(), np.asarray(faces, dtype=int)


def _colormap(name):
    if name == "Gray":
        return pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)])
    return pg.colormap.get(name.lower())


def _auto_level(vol):
    """A starting contour level: mean + 2.5 sd, kept inside the map's range."""
    mean, sd = float(vol.mean()), float(vol.std())
    level = mean + 2.5 * sd
    lo, hi = float(vol.min()), float(vol.max())
    if not lo < level < hi:
        level = lo + 0.6 * (hi - lo)
    return level


# ----------------------------------------------------------------------------- slice panel
class _SlicePanel(QtWidgets.QFrame):
    """One orthogonal plane: title, image (+ contour, mask tint, crosshair), slider."""

    indexChanged = QtCore.pyqtSignal(int)

    def __init__(self, name, labels, parent=None):
        super().__init__(parent)
        self.name = name
        self.setObjectName("panel")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        self.title = QtWidgets.QLabel(name)
        self.title.setObjectName("panelTitle")
        layout.addWidget(self.title)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(PANEL_BG)
        self.graphics.ci.setContentsMargins(0, 0, 0, 0)
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=False, enableMenu=False)
        self.view.setBackgroundColor(PANEL_BG)
        self.image = pg.ImageItem()
        self.view.addItem(self.image)
        self.mask = pg.ImageItem()
        self.mask.setZValue(5)
        self.view.addItem(self.mask)
        self.contour = pg.IsocurveItem(level=0.0, pen=pg.mkPen(CONTOUR_PEN, width=1.5))
        self.contour.setParentItem(self.image)
        self.contour.setZValue(10)
        self.mask_contour = pg.IsocurveItem(level=0.5, pen=pg.mkPen(MASK_RGB, width=1.2))
        self.mask_contour.setParentItem(self.image)
        self.mask_contour.setZValue(9)
        cross = pg.mkPen((255, 255, 255, 70), width=1, style=QtCore.Qt.DashLine)
        self.hline = pg.InfiniteLine(angle=0, movable=False, pen=cross)
        self.vline = pg.InfiniteLine(angle=90, movable=False, pen=cross)
        for line in (self.hline, self.vline):
            line.setZValue(20)
            self.view.addItem(line, ignoreBounds=True)
        self.axis_text = pg.TextItem(color=(200, 200, 200), anchor=(0, 1))
        self.axis_text.setHtml("<span style='font-size:8pt'>%s &rarr; &nbsp; %s &uarr;</span>" % labels)
        self.view.addItem(self.axis_text, ignoreBounds=True)
        layout.addWidget(self.graphics, 1)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.slider.valueChanged.connect(self.indexChanged.emit)
        layout.addWidget(self.slider)
        self._shape = None

    def set_range(self, n):
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, n - 1))
        self.slider.blockSignals(False)

    def show_plane(self, img, levels, lut, level, show_contour, mask_rgba, mask_plane, cross):
        """``img[v, h]`` (vertical, horizontal) shown with h to the right and v up."""
        self.image.setImage(img.T, levels=levels, lut=lut, autoLevels=False)
        shape = img.shape
        if shape != self._shape:
            self._shape = shape
            self.view.setRange(QtCore.QRectF(0, 0, shape[1], shape[0]), padding=0.02)
            self.axis_text.setPos(1, 1)
        self.contour.setVisible(show_contour)
        if show_contour:
            self.contour.setLevel(level)
            self.contour.setData(img.T)
        if mask_rgba is None:
            self.mask.setVisible(False)
            self.mask_contour.setVisible(False)
        else:
            self.mask.setVisible(True)
            self.mask.setImage(np.ascontiguousarray(mask_rgba.transpose(1, 0, 2)), autoLevels=False,
                               levels=(0, 255))
            self.mask_contour.setVisible(True)
            self.mask_contour.setData(mask_plane.T)
        self.vline.setPos(cross[0] + 0.5)
        self.hline.setPos(cross[1] + 0.5)


# ----------------------------------------------------------------------------- surface panel
class _SurfacePanel(QtWidgets.QFrame):
    """Shaded isosurface (matplotlib 3D; drag to rotate)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        from matplotlib.backends.backend_qt5agg import FigureCanvasQTAgg
        from matplotlib.figure import Figure
        self.setObjectName("panel")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        self.title = QtWidgets.QLabel("Isosurface")
        self.title.setObjectName("panelTitle")
        layout.addWidget(self.title)
        self.figure = Figure(figsize=(3, 3), facecolor=PANEL_BG)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Expanding)
        self.canvas.setMinimumSize(120, 120)
        layout.addWidget(self.canvas, 1)
        self.ax = self.figure.add_axes([0, 0, 1, 1], projection="3d")
        self._style_axes()
        self.n_faces = 0

    def _style_axes(self):
        ax = self.ax
        ax.set_facecolor(PANEL_BG)
        ax.set_axis_off()
        ax.view_init(elev=20, azim=-60)

    def show_surface(self, vol, level):
        ax = self.ax
        elev, azim = ax.elev, ax.azim
        ax.clear()
        self._style_axes()
        ax.view_init(elev=elev, azim=azim)
        d = vol.shape
        verts, faces = isosurface_mesh(vol, level)
        self.n_faces = len(faces)
        if len(faces):
            ax.plot_trisurf(verts[:, 0], verts[:, 1], faces, verts[:, 2], color=SURFACE_COLOR,
                            linewidth=0, antialiased=False, shade=True)
        else:
            ax.text2D(0.5, 0.5, "no surface at this level", color="#aaaaaa", ha="center",
                      transform=ax.transAxes)
        ax.set_xlim(0, d[2])
        ax.set_ylim(0, d[1])
        ax.set_zlim(0, d[0])
        try:
            ax.set_box_aspect((d[2], d[1], d[0]), zoom=1.45)
        except TypeError:
            ax.set_box_aspect((d[2], d[1], d[0]))
        self.canvas.draw_idle()


# ----------------------------------------------------------------------------- the view
_STYLE = """
QFrame#panel { background: %s; border: 1px solid #2b3138; border-radius: 3px; }
QLabel#panelTitle { color: #d8dee6; font-weight: bold; padding: 1px 2px; background: transparent; }
""" % PANEL_BG


class VolumeView(QtWidgets.QWidget):
    """Orthogonal slices + isosurface of one map or a series of maps.

    :param volumes: one ``(D, D, D)`` array, a list of them (a series), or None (empty view).
    :param labels: one text per map of a series (shown with the frame number).
    :param mask: optional ``(D, D, D)`` mask (values in [0, 1]) shown tinted on the slices.
    :param apix: voxel size in Å (shown in the info line).
    :param level: contour / isosurface level (None: mean + 2.5 sd of the first map).
    :param surface: show the isosurface panel.

    Signals: ``frameChanged(int)``, ``levelChanged(float)``.
    """

    frameChanged = QtCore.pyqtSignal(int)
    levelChanged = QtCore.pyqtSignal(float)

    LEVEL_STEPS = 1000

    def __init__(self, volumes=None, labels=None, mask=None, apix=None, level=None, surface=True,
                 parent=None):
        super().__init__(parent)
        self.setStyleSheet(_STYLE)
        self.volumes = []
        self.labels = []
        self.mask = None
        self.apix = apix
        self.frame = 0
        self.index = [0, 0, 0]           # z, y, x of the current voxel
        self.level = 0.0
        self._range = (0.0, 1.0)
        self._display = (0.0, 1.0)
        self._lut = None
        self._surface_dirty = True
        self._rock_dir = 1

        self.panels = [_SlicePanel("%s  plane" % n, labels_) for n, _, labels_ in PLANES]
        for axis, panel in enumerate(self.panels):
            panel.indexChanged.connect(lambda i, a=axis: self.set_slice(a, i))
        self.surface = _SurfacePanel() if surface else None

        grid = QtWidgets.QGridLayout()
        grid.setSpacing(4)
        grid.addWidget(self.panels[0], 0, 0)
        grid.addWidget(self.panels[1], 0, 1)
        grid.addWidget(self.panels[2], 1, 0)
        if self.surface is not None:
            grid.addWidget(self.surface, 1, 1)

        # contour / display controls
        self.level_slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.level_slider.setRange(0, self.LEVEL_STEPS)
        self.level_slider.setToolTip("Contour and isosurface level")
        self.level_spin = QtWidgets.QDoubleSpinBox()
        self.level_spin.setDecimals(4)
        self.level_spin.setKeyboardTracking(False)
        self.level_spin.setMinimumWidth(90)
        self.sigma_label = QtWidgets.QLabel()
        self.sigma_label.setMinimumWidth(60)
        self.contour_box = QtWidgets.QCheckBox("Contour")
        self.contour_box.setChecked(True)
        self.mask_box = QtWidgets.QCheckBox("Mask")
        self.mask_box.setChecked(True)
        self.mask_box.setEnabled(False)
        self.mip_box = QtWidgets.QCheckBox("Max projection")
        self.mip_box.setToolTip("Show maximum-intensity projections instead of slices")
        self.cmap_combo = QtWidgets.QComboBox()
        self.cmap_combo.addItems(COLORMAPS)
        self.cmap_combo.setToolTip("Colour map of the slices")

        level_row = QtWidgets.QHBoxLayout()
        level_row.setSpacing(6)
        level_row.addWidget(QtWidgets.QLabel("Level"))
        level_row.addWidget(self.level_slider, 1)
        level_row.addWidget(self.level_spin)
        level_row.addWidget(self.sigma_label)
        controls = QtWidgets.QHBoxLayout()
        controls.setSpacing(6)
        controls.addWidget(self.contour_box)
        controls.addWidget(self.mask_box)
        controls.addWidget(self.mip_box)
        controls.addStretch(1)
        controls.addWidget(QtWidgets.QLabel("Colours"))
        controls.addWidget(self.cmap_combo)

        # movie controls
        self.play_button = QtWidgets.QToolButton()
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play / pause the series")
        self.play_button.setIcon(self.style().standardIcon(QtWidgets.QStyle.SP_MediaPlay))
        self.play_button.setText("Play")
        self.play_button.setToolButtonStyle(QtCore.Qt.ToolButtonTextBesideIcon)
        self.frame_slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.frame_slider.setTickPosition(QtWidgets.QSlider.TicksBelow)
        self.frame_label = QtWidgets.QLabel()
        self.frame_label.setMinimumWidth(120)
        self.fps_spin = QtWidgets.QSpinBox()
        self.fps_spin.setRange(1, 30)
        self.fps_spin.setValue(5)
        self.fps_spin.setSuffix(" fps")
        self.rock_box = QtWidgets.QCheckBox("Rock")
        self.rock_box.setToolTip("Play back and forth instead of looping")
        self.rock_box.setChecked(True)
        self.movie_bar = QtWidgets.QWidget()
        movie = QtWidgets.QHBoxLayout(self.movie_bar)
        movie.setContentsMargins(0, 0, 0, 0)
        movie.addWidget(self.play_button)
        movie.addWidget(self.frame_slider, 1)
        movie.addWidget(self.frame_label)
        movie.addWidget(self.fps_spin)
        movie.addWidget(self.rock_box)

        self.info_label = QtWidgets.QLabel()
        self.info_label.setObjectName("info")
        self.info_label.setStyleSheet("color: #555;")

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(grid, 1)
        layout.addLayout(level_row)
        layout.addLayout(controls)
        layout.addWidget(self.movie_bar)
        layout.addWidget(self.info_label)

        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self._tick)
        self._surface_timer = QtCore.QTimer(self)
        self._surface_timer.setSingleShot(True)
        self._surface_timer.setInterval(150)
        self._surface_timer.timeout.connect(self._update_surface)

        self.level_slider.valueChanged.connect(self._slider_level)
        self.level_spin.valueChanged.connect(self.set_level)
        self.contour_box.toggled.connect(lambda _: self.refresh())
        self.mask_box.toggled.connect(lambda _: self.refresh())
        self.mip_box.toggled.connect(lambda _: self.refresh())
        self.cmap_combo.currentTextChanged.connect(self.set_colormap)
        self.play_button.toggled.connect(self._play_toggled)
        self.frame_slider.valueChanged.connect(self.set_frame)
        self.fps_spin.valueChanged.connect(lambda v: self.timer.setInterval(int(1000 / v)))

        self.set_colormap("Gray")
        if volumes is not None:
            self.set_volumes(volumes, labels=labels, level=level)
        else:
            self.movie_bar.setVisible(False)
            self._update_info()
        if mask is not None:
            self.set_mask(mask)

    # ------------------------------------------------------------------------- data
    @property
    def volume(self):
        """The map shown now (None when empty)."""
        return self.volumes[self.frame] if self.volumes else None

    @property
    def n_frames(self):
        return len(self.volumes)

    def set_volume(self, vol, label=None, apix=None, level=None, keep_level=True):
        """Show one map. ``keep_level``: keep the current level when a map was already shown."""
        keep = keep_level and level is None and self.volumes and \
            np.shape(vol) == self.volumes[0].shape
        self.set_volumes([vol], labels=None if label is None else [label], apix=apix,
                         level=self.level if keep else level)

    def set_volumes(self, volumes, labels=None, apix=None, level=None):
        """Show a map (``(D, D, D)`` array) or a series (list / ``(n, D, D, D)`` array)."""
        if isinstance(volumes, np.ndarray) and volumes.ndim == 3:
            volumes = [volumes]
        vols = [np.asarray(v, dtype=np.float32) for v in volumes]
        if not vols:
            raise ValueError("no map to show")
        shape = vols[0].shape
        if len(shape) != 3 or any(v.shape != shape for v in vols):
            raise ValueError("maps must be 3D arrays of one shape, got %s"
                             % sorted({v.shape for v in vols}))
        self.pause()
        self.volumes = vols
        self.labels = list(labels) if labels is not None else [""] * len(vols)
        longest = "%s   (%d / %d)" % (max(self.labels, key=len, default=""), len(vols), len(vols))
        width = self.frame_label.fontMetrics().horizontalAdvance(longest) + 8
        self.frame_label.setMinimumWidth(max(120, width))         # the slider stays put while playing
        if apix is not None:
            self.apix = apix
        if self.mask is not None and self.mask.shape != shape:
            self.mask = None
            self.mask_box.setEnabled(False)
        sample = np.concatenate([v.ravel()[::max(1, v.size // 200000)] for v in vols])
        self._range = (float(sample.min()), float(sample.max()))
        lo, hi = np.percentile(sample, [0.5, 99.8])
        if hi <= lo:
            lo, hi = self._range
        self._display = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
        self.index = [s // 2 for s in shape]
        for axis, panel in enumerate(self.panels):
            panel.set_range(shape[axis])
        self.frame = 0
        self.frame_slider.blockSignals(True)
        self.frame_slider.setRange(0, len(vols) - 1)
        self.frame_slider.setValue(0)
        self.frame_slider.blockSignals(False)
        self.movie_bar.setVisible(len(vols) > 1)
        lo_r, hi_r = self._range
        self.level_spin.blockSignals(True)
        self.level_spin.setRange(lo_r, hi_r if hi_r > lo_r else lo_r + 1.0)
        step = (hi_r - lo_r) / 200.0 if hi_r > lo_r else 0.01
        self.level_spin.setSingleStep(step)
        self.level_spin.blockSignals(False)
        new_level = _auto_level(vols[0]) if level is None else float(level)
        self._surface_dirty = True
        self.set_level(new_level, force=True)
        self._sync_sliders()

    def set_mask(self, mask):
        """A mask of the maps' shape (values in [0, 1]; None removes it)."""
        if mask is None:
            self.mask = None
            self.mask_box.setEnabled(False)
        else:
            mask = np.asarray(mask, dtype=np.float32)
            if self.volumes and mask.shape != self.volumes[0].shape:
                raise ValueError("mask shape %s differs from the map's %s"
                                 % (mask.shape, self.volumes[0].shape))
            self.mask = np.clip(mask, 0.0, 1.0)
            self.mask_box.setEnabled(True)
            self.mask_box.setChecked(True)
        self.refresh()

    # ------------------------------------------------------------------------- controls
    def set_colormap(self, name):
        self._lut = _colormap(name).getLookupTable(0.0, 1.0, 256)
        if self.cmap_combo.currentText() != name:
            self.cmap_combo.setCurrentText(name)
        self.refresh()

    def set_level(self, level, force=False):
        """Contour and isosurface level (absolute map value)."""
        level = float(level)
        if not force and abs(level - self.level) < 1e-12:
            return
        self.level = level
        self.level_spin.blockSignals(True)
        self.level_spin.setValue(level)
        self.level_spin.blockSignals(False)
        lo, hi = self._range
        pos = int(round((level - lo) / (hi - lo) * self.LEVEL_STEPS)) if hi > lo else 0
        self.level_slider.blockSignals(True)
        self.level_slider.setValue(pos)
        self.level_slider.blockSignals(False)
        self._surface_dirty = True
        self.refresh()
        self.levelChanged.emit(level)

    def _slider_level(self, pos):
        lo, hi = self._range
        self.set_level(lo + (hi - lo) * pos / float(self.LEVEL_STEPS))

    def set_slice(self, axis, index):
        """Move the plane normal to ``axis`` (0 = z, 1 = y, 2 = x) to ``index``."""
        if not self.volumes:
            return
        index = int(np.clip(index, 0, self.volumes[0].shape[axis] - 1))
        if self.index[axis] == index:
            return
        self.index[axis] = index
        self._sync_sliders()
        self.refresh(surface=False)

    def _sync_sliders(self):
        for axis, panel in enumerate(self.panels):
            panel.slider.blockSignals(True)
            panel.slider.setValue(self.index[axis])
            panel.slider.blockSignals(False)

    def set_frame(self, i):
        """Show map ``i`` of the series."""
        if not self.volumes:
            return
        i = int(i) % len(self.volumes)
        if i == self.frame and self.frame_slider.value() == i:
            return
        self.frame = i
        self.frame_slider.blockSignals(True)
        self.frame_slider.setValue(i)
        self.frame_slider.blockSignals(False)
        self._surface_dirty = True
        self.refresh()
        self.frameChanged.emit(i)

    def next_frame(self):
        """Advance the movie by one frame (looping, or back and forth with "Rock")."""
        n = len(self.volumes)
        if n < 2:
            return
        if self.rock_box.isChecked():
            nxt = self.frame + self._rock_dir
            if not 0 <= nxt < n:
                self._rock_dir = -self._rock_dir
                nxt = self.frame + self._rock_dir
        else:
            nxt = (self.frame + 1) % n
        self.set_frame(nxt)

    def play(self, fps=None):
        if fps:
            self.fps_spin.setValue(int(fps))
        if len(self.volumes) > 1:
            self.play_button.setChecked(True)

    def pause(self):
        self.play_button.setChecked(False)

    @property
    def is_playing(self):
        return self.timer.isActive()

    def _play_toggled(self, on):
        if on:
            self.timer.start(int(1000 / self.fps_spin.value()))
            self.play_button.setIcon(self.style().standardIcon(QtWidgets.QStyle.SP_MediaPause))
            self.play_button.setText("Pause")
        else:
            self.timer.stop()
            self.play_button.setIcon(self.style().standardIcon(QtWidgets.QStyle.SP_MediaPlay))
            self.play_button.setText("Play")

    def _tick(self):
        self.next_frame()

    # ------------------------------------------------------------------------- drawing
    def plane(self, axis):
        """The 2D image shown in panel ``axis`` (slice or projection), as ``img[v, h]``."""
        vol = self.volume
        if self.mip_box.isChecked():
            return vol.max(axis=axis)
        return np.take(vol, self.index[axis], axis=axis)

    def _mask_plane(self, axis):
        if self.mip_box.isChecked():
            return self.mask.max(axis=axis)
        return np.take(self.mask, self.index[axis], axis=axis)

    def refresh(self, surface=True):
        """Redraw the slices (and, soon after, the isosurface when its inputs changed)."""
        if not self.volumes:
            return
        z, y, x = self.index
        cross = {0: (x, y), 1: (x, z), 2: (y, z)}
        show_mask = self.mask is not None and self.mask_box.isChecked()
        contour = self.contour_box.isChecked()
        for axis, panel in enumerate(self.panels):
            img = self.plane(axis)
            mask_rgba, mask_plane = None, None
            if show_mask:
                mask_plane = self._mask_plane(axis)
                mask_rgba = np.zeros(mask_plane.shape + (4,), dtype=np.uint8)
                mask_rgba[..., :3] = MASK_RGB
                mask_rgba[..., 3] = (mask_plane * 60).astype(np.uint8)
            panel.show_plane(img, self._display, self._lut, self.level, contour, mask_rgba,
                             mask_plane, cross[axis])
            name = PLANES[axis][0]
            where = "max projection" if self.mip_box.isChecked() else \
                "%s = %d / %d" % ("ZYX"[axis], self.index[axis], self.volume.shape[axis] - 1)
            panel.title.setText("%s plane  \u00b7  %s" % (name, where))
        if surface and self.surface is not None and self._surface_dirty:
            self._surface_timer.start(0 if self.is_playing else 150)
        self._update_info()

    def _update_surface(self):
        if self.surface is None or not self.volumes:
            return
        self._surface_dirty = False
        self.surface.show_surface(self.volume, self.level)
        self.surface.title.setText("Isosurface  \u00b7  level %.4g" % self.level)

    def update_surface_now(self):
        """Render the isosurface immediately (otherwise it follows changes after a short delay)."""
        self._surface_timer.stop()
        self._update_surface()

    def _update_info(self):
        if not self.volumes:
            self.info_label.setText("No map")
            return
        vol = self.volume
        mean, sd = float(vol.mean()), float(vol.std())
        self.sigma_label.setText("%+.1f \u03c3" % ((self.level - mean) / sd) if sd > 0 else "")
        parts = ["%d \u00d7 %d \u00d7 %d" % vol.shape[::-1]]
        label = self.frame_text()
        if len(self.volumes) == 1 and label:
            parts.insert(0, label)
        if self.apix:
            parts.append("%.3g \u00c5/px" % self.apix)
        parts.append("min %.3g  max %.3g  mean %.3g  sd %.3g" % (vol.min(), vol.max(), mean, sd))
        if self.mask is not None:
            parts.append("mask: %d voxels > 0.5" % int((self.mask > 0.5).sum()))
        self.info_label.setText("    ".join(parts))
        if len(self.volumes) > 1:
            count = "%d / %d" % (self.frame + 1, len(self.volumes))
            self.frame_label.setText("%s   (%s)" % (label, count) if label else "frame " + count)

    def frame_text(self):
        """The label of the map shown now ("" without one)."""
        return self.labels[self.frame] if self.frame < len(self.labels) and self.labels[self.frame] else ""


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
        self._tmpdir = None
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
        paths = self.paths
        if not paths:
            if self._tmpdir is None:
                self._tmpdir = tempfile.mkdtemp(prefix="flexplugin-maps-")
            paths = [write_map(os.path.join(self._tmpdir, "map_%03d.mrc" % i), v, self.view.apix)
                     for i, v in enumerate(self.view.volumes)]
        opening = "open %s%s" % (" ".join('"%s"' % p for p in paths),
                                 " vseries true" if len(paths) > 1 else "")
        return [exe, "--cmd", "%s; volume #1 level %g" % (opening, self.view.level)]

    def open_in_chimerax(self):
        cmd = self.chimerax_command()
        if cmd:
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def closeEvent(self, event):
        self.view.pause()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        super().closeEvent(event)
