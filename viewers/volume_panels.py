"""The panels of the volume view: one orthogonal plane (:class:`SlicePanel`) and the shaded
isosurface (:class:`SurfacePanel`), with :func:`isosurface_mesh`, the triangle mesh it draws.

Arrays follow the project's convention ``vol[z, y, x]``.
"""
import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

__all__ = ["SlicePanel", "SurfacePanel", "isosurface_mesh", "PANEL_STYLE"]

MASK_RGB = (255, 140, 0)
CONTOUR_PEN = (0, 200, 255)
PANEL_BG = "#111418"
SURFACE_COLOR = "#c9d6e3"
MAX_SURFACE_DIM = 72      # larger maps are binned before marching cubes (interactive speed)


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


# ----------------------------------------------------------------------------- slice panel
class SlicePanel(QtWidgets.QFrame):
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
class SurfacePanel(QtWidgets.QFrame):
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


PANEL_STYLE = """
QFrame#panel { background: %s; border: 1px solid #2b3138; border-radius: 3px; }
QLabel#panelTitle { color: #d8dee6; font-weight: bold; padding: 1px 2px; background: transparent; }
""" % PANEL_BG
