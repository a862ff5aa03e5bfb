""":class:`VolumeView` (``QWidget``): orthogonal slices, mask overlay, contour level, isosurface and
traversal movies; the view of the volume window, also embedded by the landscape window.

Four panels: the three orthogonal planes through the current voxel (with slice sliders, contour
at the current level and an optional tinted mask) and a shaded isosurface at that level. For a
series of maps (a traversal) a play / pause button and a frame slider play it as a movie.

Arrays follow the project's convention ``vol[z, y, x]``; the XY plane is shown with x to the
right and y up.
"""
import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from .volume_panels import MASK_RGB, PANEL_STYLE, SlicePanel, SurfacePanel

__all__ = ["VolumeView"]

COLORMAPS = ("Gray", "Inferno", "Viridis", "Magma")
PLANES = (  # name, axis of vol[z, y, x] held fixed, (horizontal, vertical) labels
    ("XY", 0, ("X", "Y")),
    ("XZ", 1, ("X", "Z")),
    ("YZ", 2, ("Y", "Z")),
)


def _colormap(name):
    if name == "Gray":
        return pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)])
    return pg.colormap.get(name.lower())


def _set_quietly(widget, value):
    """``widget.setValue(value)`` without its signals."""
    widget.blockSignals(True)
    widget.setValue(value)
    widget.blockSignals(False)


def _auto_level(vol):
    """A starting contour level: mean + 2.5 sd, kept inside the map's range."""
    mean, sd = float(vol.mean()), float(vol.std())
    level = mean + 2.5 * sd
    lo, hi = float(vol.min()), float(vol.max())
    if not lo < level < hi:
        level = lo + 0.6 * (hi - lo)
    return level



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
        self.setStyleSheet(PANEL_STYLE)
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

        self.panels = [SlicePanel("%s  plane" % n, labels_) for n, _, labels_ in PLANES]
        for axis, panel in enumerate(self.panels):
            panel.indexChanged.connect(lambda i, a=axis: self.set_slice(a, i))
        self.surface = SurfacePanel() if surface else None

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
        _set_quietly(self.level_spin, level)
        lo, hi = self._range
        pos = int(round((level - lo) / (hi - lo) * self.LEVEL_STEPS)) if hi > lo else 0
        _set_quietly(self.level_slider, pos)
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
            _set_quietly(panel.slider, self.index[axis])

    def set_frame(self, i):
        """Show map ``i`` of the series."""
        if not self.volumes:
            return
        i = int(i) % len(self.volumes)
        if i == self.frame and self.frame_slider.value() == i:
            return
        self.frame = i
        _set_quietly(self.frame_slider, i)
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
