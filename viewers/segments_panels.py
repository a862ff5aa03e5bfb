"""The panels of the segments window: :class:`TraceView`, the model's C-alpha trace in 3D
(matplotlib, drag to rotate, wheel to zoom) coloured by segment with a legend of each segment's
residue ranges, and :class:`SegmentsTable`, one row per segment."""
import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from mpl_toolkits.mplot3d.art3d import Line3DCollection
from PyQt5 import QtCore, QtGui, QtWidgets

from .ca_trace import ca_bonds
from .colors import hex_color
from .segment_stats import residue_ranges

__all__ = ["TraceView", "SegmentsTable", "SUMMARY_COLUMNS", "LEGEND_INSIDE"]

LEGEND_INSIDE = 5           # more segments: the 3D view's legend goes under it, the plots' in columns
SUMMARY_COLUMNS = ("segment", "residues", "count", "angle_median", "angle_p95",
                   "translation_median", "translation_p95", "rho_angle", "rho_translation")
TABLE_HEADERS = ("Seg.", "Residues", "Count", "Angle (\u00b0)\nmedian", "Angle (\u00b0)\n95th pct",
                 "Transl. (\u00c5)\nmedian", "Transl. (\u00c5)\n95th pct", "\u03c1\nangle", "\u03c1\ntransl.")


def signed_text(value):
    """A correlation as text: "+0.96", "-0.40", "0.00", "\u2013" for NaN."""
    if not np.isfinite(value):
        return "\u2013"
    return "0.00" if abs(value) < 0.005 else "%+.2f" % value


# ----------------------------------------------------------------------------- 3D trace
class TraceView:
    """The C-alpha trace of residues ``coords`` (R, 3) Å, each coloured as its segment
    (``colors``: ``{segment: (r, g, b)}``), in ``canvas`` (a Qt widget)."""

    def __init__(self, coords, segments, numbers, chains, colors):
        self.coords, self.segments, self.numbers, self.chains = coords, segments, numbers, chains
        self.colors = colors
        self.segment_ids = list(colors)
        self.figure = Figure(figsize=(6.4, 7.0), dpi=100, facecolor="white")
        self.figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.96)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumWidth(320)
        self.canvas.mpl_connect("resize_event", lambda event: self.fit_legend())
        self._legend_rows = 0
        self.ax3d = self.figure.add_subplot(111, projection="3d")
        self._trace = None
        self._dots = None

    def draw(self, highlighted=0, reset=False):
        """Draw the trace, ``highlighted`` (a segment, 0: none) emphasised; ``reset``: back to the
        initial orientation and zoom."""
        ax = self.ax3d
        view = None if reset else (ax.elev, ax.azim, ax.get_xlim3d(), ax.get_ylim3d(), ax.get_zlim3d())
        ax.clear()
        c = self.coords
        rgba = np.array([(*[v / 255.0 for v in self.colors[s]], 1.0) for s in self.segments])
        if highlighted:
            faded = self.segments != highlighted
            rgba[faded, :3] = 0.55 + 0.45 * rgba[faded, :3]               # towards white
            rgba[faded, 3] = 0.35
        bonds = ca_bonds(c, self.chains, self.numbers)
        mid = 0.5 * (c[bonds] + c[bonds + 1])
        lines = np.concatenate([np.stack([c[bonds], mid], 1), np.stack([mid, c[bonds + 1]], 1)])
        line_colors = np.concatenate([rgba[bonds], rgba[bonds + 1]])     # each half: its residue
        width = np.where(np.concatenate([self.segments[bonds], self.segments[bonds + 1]])
                         == highlighted, 3.2, 2.2)
        self._trace = Line3DCollection(lines, colors=line_colors, linewidths=width,
                                       capstyle="round", joinstyle="round")
        ax.add_collection3d(self._trace)
        self._dots = ax.scatter(c[:, 0], c[:, 1], c[:, 2], s=7 if len(c) < 2000 else 3, c=rgba,
                                depthshade=False, linewidths=0)
        if view is None:                                # a cube around the model: 1 Å is 1 Å everywhere
            lo, hi = c.min(0), c.max(0)
            centre, half = 0.5 * (lo + hi), 0.5 * max(float((hi - lo).max()), 10.0)
            view = (18, -60) + tuple((m - half, m + half) for m in centre)
        ax.view_init(elev=view[0], azim=view[1])
        ax.set_xlim3d(*view[2])
        ax.set_ylim3d(*view[3])
        ax.set_zlim3d(*view[4])
        ax.set_box_aspect((1, 1, 1), zoom=1.08)
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis), ("z", ax.zaxis)):
            axis.set_pane_color((0.97, 0.975, 0.98, 1.0))
            axis.label.set_color("#444")
            axis.set_tick_params(labelsize=7, colors="#555", pad=0)
        ax.set_xlabel("x (\u00c5)", fontsize=8, labelpad=-4)
        ax.set_ylabel("y (\u00c5)", fontsize=8, labelpad=-4)
        ax.set_zlabel("z (\u00c5)", fontsize=8, labelpad=-4)
        handles = [Line2D([0], [0], color=hex_color(self.colors[s]), lw=4 if s == highlighted else 3,
                          solid_capstyle="round") for s in self.segment_ids]
        labels = [self._legend_label(s) for s in self.segment_ids]
        ax.set_title("Model: C-alpha trace by segment", loc="left", fontsize=10, fontweight="bold",
                     color="#222", pad=2)
        style = dict(fontsize=8, frameon=True, framealpha=0.9, edgecolor="#c8ccd0", handlelength=1.6)
        for old in self.figure.legends:
            old.remove()
        self._legend_rows = 0
        if len(labels) <= LEGEND_INSIDE:
            ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.0, 0.97), **style)
        else:                                           # many segments: a legend under the model
            ncol = 2 if len(labels) <= 16 else 3
            self._legend_rows = -(-len(labels) // ncol)
            self.figure.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.005), ncol=ncol,
                               columnspacing=1.2, **style)
        self.fit_legend()

    def fit_legend(self):
        """Room under the 3D view for a legend of ``_legend_rows`` rows (about 17 pixels each)."""
        height = max(self.figure.bbox.height, 100.0)
        self.figure.subplots_adjust(bottom=min(0.5, 0.02 + self._legend_rows * 17.0 / height))
        self.canvas.draw_idle()

    def _legend_label(self, s):
        mask = self.segments == s
        return "Segment %d: %s  (%d)" % (s, residue_ranges(self.numbers[mask], self.chains[mask], limit=3),
                                         int(mask.sum()))


# ----------------------------------------------------------------------------- table
class SegmentsTable(QtWidgets.QTableWidget):
    """One row per segment: residues, count, median and 95th percentile of its rotation angle and
    translation, their rank correlation with the landscape coordinate (|\u03c1| >= 0.5 in bold)."""

    def __init__(self, parent=None):
        super().__init__(0, len(TABLE_HEADERS), parent)
        self.setHorizontalHeaderLabels(TABLE_HEADERS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAsNeeded)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 0.92)
        self.setFont(font)
        self.setStyleSheet("QTableWidget { gridline-color: #e1e4e8; }"
                           " QHeaderView::section { background: #f4f6f8; padding: 3px 6px;"
                           " border: none; border-bottom: 1px solid #d0d7de; font-weight: bold;"
                           " font-size: 9pt; }")
        head = self.horizontalHeader()
        head.setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        head.setSectionResizeMode(1, QtWidgets.QHeaderView.Stretch)       # the residue ranges
        head.setMinimumSectionSize(36)
        head.setDefaultAlignment(QtCore.Qt.AlignCenter)
        for c, tip in ((7, "Spearman rank correlation of the rotation angle with the landscape axis"),
                       (8, "Spearman rank correlation of the translation with the landscape axis")):
            self.horizontalHeaderItem(c).setToolTip(tip)

    def fill(self, rows, colors, axis_name, highlighted=0):
        """Show ``rows`` (the window's segment summary) with each segment's colour; select the
        ``highlighted`` segment's row."""
        self.blockSignals(True)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            s = row["segment"]
            pix = QtGui.QPixmap(12, 12)
            pix.fill(QtGui.QColor(*colors[s]))
            cells = ["%d" % s, row["residues"], "%d" % row["count"]] + [
                "%.1f" % row[k] for k in ("angle_median", "angle_p95", "translation_median", "translation_p95")] + [
                signed_text(row[k]) for k in ("rho_angle", "rho_translation")]
            for c, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                if c == 0:
                    item.setIcon(QtGui.QIcon(pix))
                if c != 1:
                    item.setTextAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
                if c >= 7 and np.isfinite(row[SUMMARY_COLUMNS[c]]) and abs(row[SUMMARY_COLUMNS[c]]) >= 0.5:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                item.setToolTip(row["residues"] if c == 1 else "")
                self.setItem(r, c, item)
        self.setToolTip("\u03c1: Spearman rank correlation with %s" % axis_name)
        segment_ids = [row["segment"] for row in rows]
        if highlighted in segment_ids:
            self.selectRow(segment_ids.index(highlighted))
        self.blockSignals(False)
