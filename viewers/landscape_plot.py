"""The landscape window's plot (:class:`LandscapePlot`): every particle drawn as one image
(:func:`rasterize_points`, :class:`PointRaster`), a density image with iso-density lines, the
picked particle's star, a legend of categories or a colour bar, and a view box whose left drag
draws a rectangle or a lasso (:class:`SelectViewBox`)."""
import time

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from .colors import PICK_RGB, SELECTION_RGB

__all__ = ["rasterize_points", "PointRaster", "SelectViewBox", "LandscapePlot"]

DENSITY_LEVELS = (0.2, 0.4, 0.6, 0.75, 0.9)   # iso-density lines, fractions of the highest density


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


class PointRaster(pg.ImageItem):
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
class SelectViewBox(pg.ViewBox):
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


# ----------------------------------------------------------------------------- the plot
def binned_density(x, y, bins=None):
    """Log-scaled 2D histogram of the points, smoothed when scipy is there: ``(image indexed
    [x bin, y bin], raw histogram, (x0, y0, x1, y1) its extent with a 5% margin)``."""
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
    return img, hist, (x0, y0, x1, y1)


class LandscapePlot(pg.GraphicsLayoutWidget):
    """The plot of the landscape window: ``view`` (a :class:`SelectViewBox` calling ``owner``'s
    ``select_in_rect``, ``select_in_polygon`` and ``click_at``), ``plot``, ``points``, ``density``
    (+ ``density_lines``), ``pick``, ``legend`` and ``colorbar``; ``cmap`` colours continuous
    attributes."""

    def __init__(self, owner, cmap):
        super().__init__()
        self.cmap = cmap
        self.density_cmap = pg.ColorMap([0.0, 0.35, 1.0], [(255, 255, 255), (158, 202, 225),
                                                           (8, 48, 107)])   # white = empty
        self.density_image = None
        self.setBackground("w")
        self.view = SelectViewBox(owner, enableMenu=False)
        self.plot = self.addPlot(row=0, col=0, viewBox=self.view)
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
        for _ in DENSITY_LEVELS:
            iso = pg.IsocurveItem(level=0.0, pen=pg.mkPen(30, 30, 30, 200, width=1.2))
            iso.setZValue(8)
            self.plot.addItem(iso)
            self.density_lines.append(iso)
        self.points = PointRaster(self.view)
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
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=self.cmap, interactive=False,
                                        width=14, pen=pg.mkPen(90, 90, 90))
        cb_axis = self.colorbar.getAxis("right")
        cb_axis.setTextPen(pg.mkPen(40, 40, 40))
        cb_axis.enableAutoSIPrefix(False)
        cb_axis.setWidth(86)
        cb_axis.setStyle(hideOverlappingLabels=False, autoExpandTextSpace=True)
        self.addItem(self.colorbar, row=0, col=1)

    def set_display_mode(self, mode):
        """``"Points"``, ``"Density"`` or ``"Points + density"``."""
        self.points.setVisible(mode != "Density")
        self.density.setVisible(mode == "Density")
        for iso in self.density_lines:
            iso.setVisible(mode == "Points + density")

    def show_points(self, x, y, rgb, selected, order, size):
        """Particles in ``order`` (the selected ones last, on top, in red)."""
        rgb = rgb.copy()
        rgb[selected] = SELECTION_RGB
        if selected.any():
            order = np.concatenate([order[~selected[order]], order[selected[order]]])
        self.points.set_points(x[order], y[order], rgb[order], size, edge=len(order) <= 20000)

    def show_density(self, x, y, bins=None):
        img, hist, (x0, y0, x1, y1) = binned_density(x, y, bins)
        bins = img.shape[0]
        lut = self.density_cmap.getLookupTable(0.0, 1.0, 256)
        self.density.setImage(img, lut=lut, levels=(0, img.max() or 1.0), autoLevels=False)
        self.density.setRect(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
        top = float(img.max()) or 1.0
        t = QtGui.QTransform()
        t.translate(x0, y0)
        t.scale((x1 - x0) / bins, (y1 - y0) / bins)
        for iso, frac in zip(self.density_lines, DENSITY_LEVELS):
            iso.setTransform(t)
            iso.setLevel(frac * top)
            iso.setData(img)
        self.density_image = hist

    def show_pick(self, x=None, y=None):
        """Mark the picked particle at (x, y) (None: no mark)."""
        self.pick.setData([] if x is None else [x], [] if y is None else [y])

    def show_legend(self, coloring, name, show_points):
        """A legend of ``coloring``'s categories ("<name> <value>  (count)") or a colour bar of
        its range, while the points are shown."""
        self.legend.clear()
        cats = coloring.categories if (coloring is not None and show_points) else None
        if cats:
            for value, color, count in cats:
                item = pg.ScatterPlotItem(symbol="o", size=9, pen=None, brush=pg.mkBrush(*color))
                label = value if isinstance(value, str) else "%s %s" % (name, value)
                self.legend.addItem(item, "%s  (%d)" % (label, count))
        self.legend.setVisible(bool(cats))
        layout = self.ci.layout
        if coloring is not None and coloring.range is not None and show_points:
            self.colorbar.setVisible(True)
            self.colorbar.setLevels(coloring.range)
            self.colorbar.setColorMap(self.cmap)
            self.colorbar.getAxis("right").setLabel(name, color="#222")
            layout.setColumnFixedWidth(1, 126)
        else:
            self.colorbar.setVisible(False)
            layout.setColumnFixedWidth(1, 0)
