"""Training window: the loss curves of a training run, read from its ``metrics.json``.

The file is written by the engine after every epoch::

    {"method": "cryodrgn", "epochs": [{"epoch": 1, "seconds": 12.3, "images_per_s": 810.0,
                                       "loss": 0.91, "mse": 0.88, "kld": 3.1, ...}, ...]}

Every numeric metric except ``epoch``, ``seconds`` and ``images_per_s`` gets its own plot (shared
epoch axis, optional log scale). "Reload" re-reads the file; with "Follow" the window reloads by
itself whenever the file changes (a training in progress).
"""
import json
import math
import os

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

__all__ = ["TrainingWindow", "read_metrics"]

NOT_PLOTTED = ("epoch", "seconds", "images_per_s")
COLORS = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233),
          (230, 159, 0), (100, 100, 100), (148, 103, 189)]


def read_metrics(path):
    """``metrics.json`` -> ``(method, epochs (n,), {metric: (n,) float array with NaN gaps},
    {"seconds": ..., "images_per_s": ...})``."""
    with open(path) as f:
        doc = json.load(f)
    rows = [r for r in doc.get("epochs", []) if isinstance(r, dict)]
    epochs = np.array([float(r.get("epoch", i + 1)) for i, r in enumerate(rows)])
    names = []
    for r in rows:
        for k, v in r.items():
            if k in NOT_PLOTTED or k in names:
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                names.append(k)
    def column(key):
        out = np.full(len(rows), np.nan)
        for i, r in enumerate(rows):
            v = r.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[i] = float(v)
        return out
    metrics = {k: column(k) for k in names}
    timing = {k: column(k) for k in ("seconds", "images_per_s")}
    return doc.get("method", ""), epochs, metrics, timing


class TrainingWindow(QtWidgets.QMainWindow):
    """Loss curves of one training run.

    :param path: the run's ``metrics.json`` (or its folder).
    :param title: window title (default: the method and the folder).
    :param follow: reload automatically when the file changes.
    :param log_scale: start with logarithmic y axes.
    :param columns: plots per row.
    """

    def __init__(self, path, title=None, follow=False, log_scale=False, columns=2, parent=None):
        super().__init__(parent)
        if os.path.isdir(path):
            path = os.path.join(path, "metrics.json")
        self.path = str(path)
        self.columns = max(1, int(columns))
        self.method = ""
        self.epochs = np.zeros(0)
        self.metrics = {}
        self.timing = {}
        self.plots = {}
        self.curves = {}
        self._title = title

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.summary = QtWidgets.QLabel()
        self.summary.setTextFormat(QtCore.Qt.RichText)
        self.summary.setStyleSheet("padding: 6px 8px; background: #f4f6f8; border-bottom: 1px solid #d0d7de;")
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.summary)
        layout.addWidget(self.graphics, 1)
        self.setCentralWidget(central)

        tb = self.addToolBar("Training")
        tb.setMovable(False)
        self.reload_action = tb.addAction(self.style().standardIcon(QtWidgets.QStyle.SP_BrowserReload),
                                          "Reload", self.reload)
        self.reload_action.setShortcut(QtGui.QKeySequence.Refresh)
        tb.setToolButtonStyle(QtCore.Qt.ToolButtonTextBesideIcon)
        tb.addSeparator()
        self.log_box = QtWidgets.QCheckBox("Log scale")
        self.log_box.setChecked(log_scale)
        self.log_box.toggled.connect(self.set_log_scale)
        tb.addWidget(self.log_box)
        self.follow_box = QtWidgets.QCheckBox("Follow")
        self.follow_box.setToolTip("Reload whenever the file changes")
        tb.addWidget(self.follow_box)
        self.watcher = QtCore.QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(self._file_changed)
        self.follow_box.toggled.connect(self.set_follow)

        self.resize(1000, 720)
        self.reload()
        self.set_follow(follow)

    # ------------------------------------------------------------------------- data
    def reload(self):
        """Re-read the file and redraw; returns the number of epochs read."""
        try:
            self.method, self.epochs, self.metrics, self.timing = read_metrics(self.path)
            error = None
        except (OSError, ValueError) as e:
            self.method, self.epochs, self.metrics, self.timing = "", np.zeros(0), {}, {}
            error = "%s: %s" % (self.path, e.strerror if isinstance(e, OSError) and e.strerror else e)
        self._draw()
        self._update_summary(error)
        self.setWindowTitle(self._title or "flexplugin \u2014 training%s  (%s)" % (
            " of " + self.method if self.method else "", os.path.basename(os.path.dirname(
                os.path.abspath(self.path))) or self.path))
        self.statusBar().showMessage(error or "Read %d epochs from %s" % (len(self.epochs), self.path))
        return len(self.epochs)

    def plotted_metrics(self):
        """Names of the metrics plotted, in file order."""
        return list(self.metrics)

    def set_log_scale(self, on=True):
        on = bool(on)
        if self.log_box.isChecked() != on:
            self.log_box.setChecked(on)
            return
        for name, plot in self.plots.items():
            values = self.metrics[name]
            positive = np.all(values[np.isfinite(values)] > 0)
            plot.setLogMode(x=False, y=on and positive)

    @property
    def log_scale(self):
        return self.log_box.isChecked()

    def set_follow(self, on=True):
        on = bool(on)
        if self.follow_box.isChecked() != on:
            self.follow_box.setChecked(on)
            return
        files = self.watcher.files()
        if files:
            self.watcher.removePaths(files)
        if on and os.path.exists(self.path):
            self.watcher.addPath(self.path)

    def _file_changed(self, path):
        # an atomic rewrite replaces the file: watch the new one
        QtCore.QTimer.singleShot(200, self._reload_followed)

    def _reload_followed(self):
        self.reload()
        if self.follow_box.isChecked() and os.path.exists(self.path) and self.path not in self.watcher.files():
            self.watcher.addPath(self.path)

    # ------------------------------------------------------------------------- drawing
    def _draw(self):
        self.graphics.clear()
        self.plots, self.curves = {}, {}
        if not self.metrics:
            self.graphics.addLabel("No metrics yet", color="#888", size="14pt")
            return
        first = None
        for k, (name, values) in enumerate(self.metrics.items()):
            row, col = divmod(k, self.columns)
            plot = self.graphics.addPlot(row=row, col=col)
            plot.setTitle("<span style='color:#222; font-size:11pt'><b>%s</b></span>" % name)
            plot.showGrid(x=True, y=True, alpha=0.2)
            for side in ("left", "bottom"):
                ax = plot.getAxis(side)
                ax.setPen(pg.mkPen(110, 110, 110))
                ax.setTextPen(pg.mkPen(40, 40, 40))
            plot.setLabel("bottom", "epoch", color="#333")
            color = COLORS[k % len(COLORS)]
            ok = np.isfinite(values)
            curve = plot.plot(self.epochs[ok], values[ok], pen=pg.mkPen(color, width=2),
                              symbol="o", symbolSize=6, symbolBrush=color, symbolPen=pg.mkPen("w"))
            plot.setMenuEnabled(False)
            if ok.any():
                last = values[ok][-1]
                plot.setTitle("<span style='color:#222; font-size:11pt'><b>%s</b></span>"
                              "<span style='color:#666; font-size:9pt'>&nbsp;&nbsp;last %.4g"
                              "&nbsp;&nbsp;min %.4g</span>" % (name, last, np.nanmin(values)))
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            self.plots[name] = plot
            self.curves[name] = curve
        self.set_log_scale(self.log_box.isChecked())

    def _update_summary(self, error=None):
        if error:
            self.summary.setText("<span style='color:#b00020'>%s</span>" % error)
            return
        n = len(self.epochs)
        parts = ["<b>%s</b>" % (self.method or "training"), "%d epoch%s" % (n, "" if n == 1 else "s")]
        secs = self.timing.get("seconds")
        if secs is not None and np.isfinite(secs).any():
            total = float(np.nansum(secs))
            parts.append("%s total, %.1f s / epoch" % (_duration(total), float(np.nanmean(secs))))
        ips = self.timing.get("images_per_s")
        if ips is not None and np.isfinite(ips).any():
            parts.append("%.0f images / s" % float(np.nanmean(ips)))
        if "loss" in self.metrics and np.isfinite(self.metrics["loss"]).any():
            parts.append("loss %.4g (best %.4g)" % (self.metrics["loss"][np.isfinite(self.metrics["loss"])][-1],
                                                    np.nanmin(self.metrics["loss"])))
        self.summary.setText("&nbsp;&nbsp;\u00b7&nbsp;&nbsp;".join(parts))


def _duration(seconds):
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return ("%dh %02dm" % (h, m)) if h else ("%dm %02ds" % (m, s)) if m else "%ds" % s
