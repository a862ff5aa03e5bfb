"""Segments window: a cryoSPHERE run's segmentation and each segment's motion along the landscape.

:class:`SegmentsWindow` shows, on the left, the atomic model's C-alpha trace in 3D (matplotlib,
drag to rotate, wheel to zoom) coloured by segment, with a legend of each segment's residue
ranges; on the right, for every non-empty segment, its rotation angle and its translation
magnitude along a landscape coordinate (the first principal component of z by default, or any
latent component / landscape axis chosen in the toolbar): the median of equal-count bins with
the interquartile range as a band, one colour per segment as in the 3D view. A table lists every
segment's residues, the median and 95th percentile of its angle and translation and their rank
correlation (Spearman) with the coordinate. Selecting a row highlights that segment everywhere.

:func:`read_ca_trace` (:mod:`.ca_trace`) reads the C-alpha (and C4') trace of a PDB or mmCIF file
with the engine's reader;
:func:`chimerax_models_command` (:mod:`.chimerax`) opens models coloured by segment; the
statistics are in :mod:`.segment_stats`, the 3D view and the table in :mod:`.segments_panels`.

Every control has a method counterpart (``set_axis``, ``set_bins``, ``highlight_segment``,
``segment_summary``...), so scripts and tests drive the window without a mouse.
"""
import csv
import os

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from .ca_trace import read_ca_trace
from .chimerax import chimerax_executable, chimerax_models_command, launch
from .colors import PALETTE, segment_colors
from .segment_stats import (binned_quantiles, principal_components, rank_correlation, ranks, residue_ranges,
                            spearman)
from .segments_panels import LEGEND_INSIDE, SUMMARY_COLUMNS, SegmentsTable, TraceView

__all__ = ["SegmentsWindow", "read_ca_trace", "residue_ranges", "binned_quantiles", "spearman",
           "chimerax_models_command", "PALETTE"]

MAX_SCATTER = 1500          # particles drawn per segment when "Particles" is on


# ----------------------------------------------------------------------------- the window
class SegmentsWindow(QtWidgets.QMainWindow):
    """A cryoSPHERE segmentation and its motions along the landscape.

    :param coords: ``(R, 3)`` C-alpha coordinates of the input model in Å.
    :param segments: ``(R,)`` segment of each residue (1-based; segment ``k`` is column ``k - 1``
        of the motions).
    :param numbers: ``(R,)`` residue numbers.
    :param angle_deg: ``(N, K)`` rotation angle of each segment per particle, degrees.
    :param translation_A: ``(N, K, 3)`` translation of each segment per particle, Å.
    :param z: ``(N, zdim)`` latent vectors (the landscape axes offered are their principal
        components and components), or ``(N,)`` one landscape coordinate.
    :param title: window title.
    :param chains: ``(R,)`` chain ids (shown in residue ranges when there are several).
    :param extra_axes: ``{name: (N,) values}`` more landscape coordinates (e.g. UMAP axes).
    :param models: model files (e.g. at k-means centres) for "Open models in ChimeraX".
    :param bins: number of equal-count bins along the coordinate (default from N).

    Signals: ``axisChanged(str)``, ``segmentHighlighted(int)`` (0: none).
    """

    axisChanged = QtCore.pyqtSignal(str)
    segmentHighlighted = QtCore.pyqtSignal(int)

    def __init__(self, coords, segments, numbers, angle_deg, translation_A, z, title=None,
                 chains=None, extra_axes=None, models=None, bins=None, parent=None):
        super().__init__(parent)
        self.coords = np.asarray(coords, dtype=np.float64)
        self.segments = np.asarray(segments).astype(np.int64)
        self.numbers = np.asarray(numbers).astype(np.int64)
        r = len(self.coords)
        if self.coords.shape != (r, 3) or self.segments.shape != (r,) or self.numbers.shape != (r,):
            raise ValueError("coords (R, 3), segments (R,) and numbers (R,) must describe the same "
                             "residues; got %s, %s, %s" % (self.coords.shape, self.segments.shape,
                                                           self.numbers.shape))
        self.chains = np.full(r, "") if chains is None else np.asarray(chains).astype(str)
        self.angle = np.asarray(angle_deg, dtype=np.float64)
        translation = np.asarray(translation_A, dtype=np.float64)
        if self.angle.ndim != 2 or translation.shape != self.angle.shape + (3,):
            raise ValueError("angle_deg must be (N, K) and translation_A (N, K, 3); got %s and %s"
                             % (self.angle.shape, translation.shape))
        n, k = self.angle.shape
        self.translation = np.linalg.norm(translation, axis=-1)            # (N, K) magnitudes
        if r and (self.segments.min() < 1 or self.segments.max() > k):
            raise ValueError("segments must lie in 1..%d (the motions' segments)" % k)
        self.segment_ids = [int(s) for s in np.unique(self.segments)]     # the non-empty ones
        self.colors = segment_colors(self.segment_ids)
        self.models = [str(p) for p in (models or [])]

        z = np.asarray(z, dtype=np.float64)
        if len(z) != n:
            raise ValueError("z has %d rows for %d particles" % (len(z), n))
        self.axes = {}
        self.axis_titles = {}         # axis name -> the plots' axis label, where it says more
        if z.ndim == 1:
            self.axes["landscape coordinate"] = z
        else:
            z = z.reshape(n, -1)
            pcs, ratio = principal_components(z, return_ratio=True)
            for j in range(pcs.shape[1]):
                name = "PC %d" % (j + 1)
                self.axes[name] = pcs[:, j]
                self.axis_titles[name] = "%s of z (%.0f%% of variance)" % (name, 100 * ratio[j])
            for j in range(z.shape[1]):
                self.axes["z%d" % (j + 1)] = z[:, j]
        for name, values in (extra_axes or {}).items():
            values = np.asarray(values, dtype=np.float64)
            if values.shape != (n,):
                raise ValueError("axis %r has shape %s for %d particles" % (name, values.shape, n))
            self.axes[str(name)] = values
        if not self.axes:
            raise ValueError("no landscape coordinate (z has no components)")
        self.axis_name = next(iter(self.axes))
        self.bins = int(bins) if bins else int(np.clip(n // 40, 4, 30))
        self.highlighted = 0
        self.show_particles = False
        self.profiles = {}
        self._summary_rows = []
        self._value_ranks = None
        self._title = title

        self.trace = TraceView(self.coords, self.segments, self.numbers, self.chains, self.colors)
        self.canvas = self.trace.canvas
        self._build_plots()
        self.table = SegmentsTable()
        self.table.itemSelectionChanged.connect(self._table_selection_changed)
        self._build_toolbar()
        self._build_menu()

        self.header = QtWidgets.QLabel()
        self.header.setTextFormat(QtCore.Qt.RichText)
        self.header.setStyleSheet("padding: 6px 8px; background: #f4f6f8; border-bottom: 1px solid #d0d7de;")
        right = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        right.addWidget(self.plot_widget)
        right.addWidget(self.table)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setSizes([600, 190])
        split = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        split.addWidget(self.canvas)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([600, 840])
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(split, 1)
        self.setCentralWidget(central)
        self.setWindowTitle(title or "flexplugin \u2014 cryoSPHERE segments")
        self.resize(1440, 860)

        self.trace.draw(reset=True)
        self.set_axis(self.axis_name)
        self.statusBar().showMessage(
            "Drag the model to rotate it, wheel to zoom; select a segment in the table to highlight it.")

    # ------------------------------------------------------------------------- construction
    def _build_plots(self):
        self.plot_widget = pg.GraphicsLayoutWidget()
        self.plot_widget.setBackground("w")
        self.plots = {}
        for row, (key, label) in enumerate((("angle", "rotation angle (\u00b0)"),
                                            ("translation", "translation (\u00c5)"))):
            plot = self.plot_widget.addPlot(row=row, col=0)
            plot.showGrid(x=True, y=True, alpha=0.2)
            for side in ("left", "bottom"):
                ax = plot.getAxis(side)
                ax.setPen(pg.mkPen(110, 110, 110))
                ax.setTextPen(pg.mkPen(40, 40, 40))
                ax.enableAutoSIPrefix(False)              # ticks in degrees, Å and z units, no "(x0.001)"
            plot.setLabel("left", label, color="#333")
            plot.setMenuEnabled(False)
            plot.hideButtons()
            self.plots[key] = plot
        self.plots["translation"].setXLink(self.plots["angle"])
        self.legend = pg.LegendItem(offset=(10, 5), labelTextColor=(30, 30, 30),
                                    brush=pg.mkBrush(255, 255, 255, 220), pen=pg.mkPen(190, 190, 190))
        self.legend.setParentItem(self.plots["angle"].getViewBox())
        self.curves = {}

    def _build_toolbar(self):
        tb = self.addToolBar("Segments")
        tb.setMovable(False)
        tb.setToolButtonStyle(QtCore.Qt.ToolButtonTextOnly)
        tb.addWidget(QtWidgets.QLabel(" Landscape axis "))
        self.axis_combo = QtWidgets.QComboBox()
        self.axis_combo.addItems(list(self.axes))
        self.axis_combo.setMinimumContentsLength(10)
        self.axis_combo.setToolTip("The coordinate along which the motions are plotted")
        self.axis_combo.currentTextChanged.connect(self.set_axis)
        tb.addWidget(self.axis_combo)
        tb.addWidget(QtWidgets.QLabel("  Bins "))
        self.bins_spin = QtWidgets.QSpinBox()
        self.bins_spin.setRange(2, 100)
        self.bins_spin.setValue(self.bins)
        self.bins_spin.setToolTip("Equal-count bins along the coordinate")
        self.bins_spin.valueChanged.connect(self.set_bins)
        tb.addWidget(self.bins_spin)
        self.particles_box = QtWidgets.QCheckBox("Particles")
        self.particles_box.setToolTip("Show the particles' values behind the medians")
        self.particles_box.toggled.connect(self.set_show_particles)
        tb.addWidget(self.particles_box)
        tb.addSeparator()
        tb.addAction("Reset 3D view", lambda: self.trace.draw(self.highlighted, reset=True)).setToolTip(
            "Back to the initial orientation and zoom")
        self.chimerax_action = None
        if self.models and chimerax_executable():
            tb.addSeparator()
            self.chimerax_action = tb.addAction("Open models in ChimeraX", self.open_models_in_chimerax)
            self.chimerax_action.setToolTip("The %d models, coloured by segment" % len(self.models))
        self.toolbar = tb

    def _build_menu(self):
        menu = self.menuBar().addMenu("&File")
        menu.addAction("Save image\u2026", self._save_image_dialog).setShortcut(QtGui.QKeySequence.Save)
        menu.addAction("Save table (CSV)\u2026", self._save_table_dialog)
        menu.addSeparator()
        menu.addAction("Close", self.close).setShortcut(QtGui.QKeySequence.Close)

    # ------------------------------------------------------------------------- landscape axis
    def axis_names(self):
        """The landscape coordinates offered."""
        return list(self.axes)

    @property
    def coordinate(self):
        """(N,) values of the chosen landscape coordinate."""
        return self.axes[self.axis_name]

    def set_axis(self, name):
        """Plot the motions along coordinate ``name`` (one of :meth:`axis_names`)."""
        name = str(name)
        if name not in self.axes:
            raise KeyError("no landscape axis %r (have: %s)" % (name, ", ".join(self.axes)))
        self.axis_name = name
        if self.axis_combo.currentText() != name:
            self.axis_combo.blockSignals(True)
            self.axis_combo.setCurrentText(name)
            self.axis_combo.blockSignals(False)
        self._update()
        self.axisChanged.emit(name)

    def set_bins(self, bins):
        """Number of equal-count bins along the coordinate."""
        self.bins = int(bins)
        if self.bins_spin.value() != self.bins:
            self.bins_spin.blockSignals(True)
            self.bins_spin.setValue(self.bins)
            self.bins_spin.blockSignals(False)
        self._update()

    def set_show_particles(self, on=True):
        """Draw the particles' values (a subsample) behind the binned medians."""
        self.show_particles = bool(on)
        if self.particles_box.isChecked() != self.show_particles:
            self.particles_box.blockSignals(True)
            self.particles_box.setChecked(self.show_particles)
            self.particles_box.blockSignals(False)
        self._draw_profiles()

    # ------------------------------------------------------------------------- numbers
    def _update(self):
        x = self.coordinate
        cols = [s - 1 for s in self.segment_ids]
        self.profiles = {}
        for key, values in (("angle", self.angle), ("translation", self.translation)):
            centres, q = binned_quantiles(x, values[:, cols], self.bins)
            for j, s in enumerate(self.segment_ids):
                self.profiles.setdefault(s, {"x": centres})[key] = q[:, :, j]
        if self._value_ranks is None:                   # the motions' ranks do not change with the axis
            self._value_ranks = (ranks(self.angle[:, cols]), ranks(self.translation[:, cols]))
        rx = ranks(x)
        rho_a, rho_t = (rank_correlation(rx, r) for r in self._value_ranks)
        rows = []
        for j, s in enumerate(self.segment_ids):
            mask = self.segments == s
            a, t = self.angle[:, s - 1], self.translation[:, s - 1]
            rows.append({"segment": s,
                         "residues": residue_ranges(self.numbers[mask], self.chains[mask]),
                         "count": int(mask.sum()),
                         "angle_median": float(np.median(a)), "angle_p95": float(np.percentile(a, 95)),
                         "translation_median": float(np.median(t)),
                         "translation_p95": float(np.percentile(t, 95)),
                         "rho_angle": float(rho_a[j]), "rho_translation": float(rho_t[j])})
        self._summary_rows = rows
        self.table.fill(self._summary_rows, self.colors, self.axis_name, self.highlighted)
        self._draw_profiles()
        self._update_header()

    def segment_summary(self):
        """One dict per non-empty segment (the table's rows): ``segment``, ``residues`` (ranges),
        ``count``, ``angle_median``, ``angle_p95`` (degrees), ``translation_median``,
        ``translation_p95`` (Å), ``rho_angle``, ``rho_translation`` (Spearman correlation with the
        chosen landscape coordinate)."""
        return [dict(r) for r in self._summary_rows]

    def save_table(self, path):
        """Write :meth:`segment_summary` as CSV; returns the number of rows."""
        rows = self.segment_summary()
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        return len(rows)

    # ------------------------------------------------------------------------- drawing
    def _draw_profiles(self):
        for plot in self.plots.values():
            plot.clear()
        self.legend.clear()
        self.curves = {}
        x = self.coordinate
        rng = np.random.default_rng(0)
        for s in self.segment_ids:
            rgb = self.colors[s]
            dim = self.highlighted and s != self.highlighted
            alpha_line, alpha_band = (70, 18) if dim else (255, 60)
            prof = self.profiles[s]
            for key, plot in self.plots.items():
                if self.show_particles:
                    values = (self.angle if key == "angle" else self.translation)[:, s - 1]
                    idx = rng.choice(len(x), min(len(x), MAX_SCATTER), replace=False)
                    dots = pg.ScatterPlotItem(x[idx], values[idx], size=3, pen=None,
                                              brush=pg.mkBrush(*rgb, 28 if dim else 55))
                    dots.setZValue(-20)
                    plot.addItem(dots)
                lo = pg.PlotDataItem(prof["x"], prof[key][:, 0], pen=pg.mkPen(*rgb, alpha_band + 40, width=1))
                hi = pg.PlotDataItem(prof["x"], prof[key][:, 2], pen=pg.mkPen(*rgb, alpha_band + 40, width=1))
                band = pg.FillBetweenItem(lo, hi, brush=pg.mkBrush(*rgb, alpha_band))
                band.setZValue(-10)
                plot.addItem(band)
                plot.addItem(lo)
                plot.addItem(hi)
                width = 3.2 if s == self.highlighted else 2.2
                curve = plot.plot(prof["x"], prof[key][:, 1], pen=pg.mkPen(*rgb, alpha_line, width=width),
                                  symbol="o", symbolSize=5, symbolBrush=pg.mkBrush(*rgb, alpha_line),
                                  symbolPen=pg.mkPen(255, 255, 255, alpha_line))
                curve.setZValue(10 if s == self.highlighted else 0)
                self.curves[(s, key)] = curve
                if key == "angle":
                    self.legend.addItem(curve, "Segment %d" % s)
        self.legend.setColumnCount(max(1, -(-len(self.segment_ids) // 3)) if len(self.segment_ids) > LEGEND_INSIDE
                                   else 1)
        for key, plot in self.plots.items():
            plot.setLabel("bottom", self.axis_titles.get(self.axis_name, self.axis_name), color="#333")
            plot.enableAutoRange()
        bins = len(next(iter(self.profiles.values()))["x"]) if self.profiles else 0
        for key, name in (("angle", "Rotation angle"), ("translation", "Translation")):
            self.plots[key].setTitle("<span style='color:#222; font-size:11pt'><b>%s</b></span>"
                                     "<span style='color:#666; font-size:9pt'>&nbsp;&nbsp;median of %d "
                                     "bins, band: 25\u201375%%</span>" % (name, bins))

    def _update_header(self):
        n = len(self.angle)
        moving = [r for r in self._summary_rows if np.isfinite(r["rho_angle"]) and
                  max(abs(r["rho_angle"]), abs(r["rho_translation"])) >= 0.5]
        parts = ["<b>cryoSPHERE segments</b>", "%s residues" % format(len(self.coords), ","),
                 "%d segment%s" % (len(self.segment_ids), "" if len(self.segment_ids) == 1 else "s"),
                 "%s particles" % format(n, ",")]
        if moving:
            parts.append("moving with <b>%s</b>: %s" % (self.axis_name, ", ".join(
                "segment %d" % r["segment"] for r in moving)))
        else:
            parts.append("no segment follows <b>%s</b> (|\u03c1| &lt; 0.5)" % self.axis_name)
        self.header.setText("&nbsp;&nbsp;\u00b7&nbsp;&nbsp;".join(parts))

    # ------------------------------------------------------------------------- highlight
    def highlight_segment(self, segment):
        """Emphasise one segment in the 3D view, the plots and the table (0 or None: none)."""
        segment = int(segment or 0)
        if segment and segment not in self.segment_ids:
            raise KeyError("no segment %d (non-empty: %s)" % (segment, self.segment_ids))
        self.highlighted = segment
        self.table.blockSignals(True)
        if segment:
            self.table.selectRow(self.segment_ids.index(segment))
        else:
            self.table.clearSelection()
        self.table.blockSignals(False)
        self.trace.draw(self.highlighted)
        self._draw_profiles()
        self.segmentHighlighted.emit(segment)

    def _table_selection_changed(self):
        rows = self.table.selectionModel().selectedRows()
        segment = self.segment_ids[rows[0].row()] if rows else 0
        if segment != self.highlighted:
            self.highlight_segment(segment)

    # ------------------------------------------------------------------------- files
    def save_image(self, path):
        """A picture of the whole window."""
        return self.grab().save(str(path))

    def _save_image_dialog(self):
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save image", "segments.png", "PNG (*.png)")
        if path:
            self.save_image(path)

    def _save_table_dialog(self):
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save table", "segments.csv", "CSV (*.csv)")
        if path:
            self.statusBar().showMessage("Wrote %d segments to %s" % (self.save_table(path), path), 5000)

    def chimerax_command(self):
        """The ChimeraX command line for the models, coloured by segment (None without ChimeraX)."""
        return chimerax_models_command(self.models, self.numbers, self.segments)

    def open_models_in_chimerax(self):
        cmd = self.chimerax_command()
        if cmd:
            launch(cmd, cwd=os.path.dirname(self.models[0]) or None)
