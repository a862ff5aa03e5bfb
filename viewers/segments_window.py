"""Segments window: a cryoSPHERE run's segmentation and each segment's motion along the landscape.

:class:`SegmentsWindow` shows, on the left, the atomic model's C-alpha trace in 3D (matplotlib,
drag to rotate, wheel to zoom) coloured by segment, with a legend of each segment's residue
ranges; on the right, for every non-empty segment, its rotation angle and its translation
magnitude along a landscape coordinate (the first principal component of z by default, or any
latent component / landscape axis chosen in the toolbar): the median of equal-count bins with
the interquartile range as a band, one colour per segment as in the 3D view. A table lists every
segment's residues, the median and 95th percentile of its angle and translation and their rank
correlation (Spearman) with the coordinate. Selecting a row highlights that segment everywhere.

:func:`read_ca_trace` reads the C-alpha atoms of a PDB or mmCIF file (gemmi when importable, a
small reader otherwise); :func:`chimerax_models_command` opens models coloured by segment.

Every control has a method counterpart (``set_axis``, ``set_bins``, ``highlight_segment``,
``segment_summary``...), so scripts and tests drive the window without a mouse.
"""
import csv
import os
import re
import subprocess

import numpy as np
import pyqtgraph as pg
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from mpl_toolkits.mplot3d.art3d import Line3DCollection
from PyQt5 import QtCore, QtGui, QtWidgets

from .landscape_window import PALETTE
from .volume_window import chimerax_executable

__all__ = ["SegmentsWindow", "read_ca_trace", "residue_ranges", "binned_quantiles", "spearman",
           "chimerax_models_command"]

MAX_BOND_A = 4.5            # consecutive C-alpha atoms further apart: a chain break, no bond drawn
MAX_SCATTER = 1500          # particles drawn per segment when "Particles" is on
LEGEND_INSIDE = 5           # more segments: the 3D view's legend goes under it, the plots' in columns
SUMMARY_COLUMNS = ("segment", "residues", "count", "angle_median", "angle_p95",
                   "translation_median", "translation_p95", "rho_angle", "rho_translation")
TABLE_HEADERS = ("Seg.", "Residues", "Count", "Angle (\u00b0)\nmedian", "Angle (\u00b0)\n95th pct",
                 "Transl. (\u00c5)\nmedian", "Transl. (\u00c5)\n95th pct", "\u03c1\nangle", "\u03c1\ntransl.")


# ----------------------------------------------------------------------------- model files
_CIF_TOKEN = re.compile(r"'(?:[^']|'(?=\S))*'|\"(?:[^\"]|\"(?=\S))*\"|\S+")


def _read_ca_pdb(path):
    rows, altloc = [], {}
    with open(path) as f:
        for line in f:
            rec = line[:6]
            if rec.startswith("ENDMDL"):
                break                                   # the first model only
            if rec not in ("ATOM  ", "HETATM") or line[12:16] != " CA ":
                continue                                # " CA " is C-alpha, "CA  " calcium
            element = line[76:78].strip().upper()
            if element and element != "C":
                continue
            key = (line[21], line[22:27])
            if key in altloc:                           # first alternate location only
                continue
            altloc[key] = True
            rows.append((line[21].strip(), int(line[22:26]),
                         float(line[30:38]), float(line[38:46]), float(line[46:54])))
    return rows


def _read_ca_cif(path):
    """C-alpha rows of an mmCIF ``_atom_site`` loop (first model, first alternate location)."""
    with open(path) as f:
        lines = f.read().splitlines()
    i, n = 0, len(lines)
    while i < n:
        if lines[i].strip() == "loop_" and i + 1 < n and lines[i + 1].strip().startswith("_atom_site."):
            break
        i += 1
    else:
        return []
    i += 1
    names = []
    while i < n and lines[i].strip().startswith("_atom_site."):
        names.append(lines[i].strip().split()[0][len("_atom_site."):])
        i += 1
    col = {name: k for k, name in enumerate(names)}

    def pick(row, *keys):
        for key in keys:
            if key in col and row[col[key]] not in (".", "?"):
                return row[col[key]]
        return ""

    rows, seen, model = [], set(), None
    tokens = []
    while i < n:
        line = lines[i]
        i += 1
        s = line.strip()
        if not s or s.startswith("#"):
            if tokens:
                break
            continue
        if s == "loop_" or s.startswith("_") or s.startswith("data_"):
            break
        tokens += [t[1:-1] if t[:1] in "'\"" else t for t in _CIF_TOKEN.findall(line)]
        while len(tokens) >= len(names):
            row, tokens = tokens[:len(names)], tokens[len(names):]
            if pick(row, "label_atom_id", "auth_atom_id") != "CA" or pick(row, "type_symbol") not in ("C", ""):
                continue
            m = pick(row, "pdbx_PDB_model_num")
            if model is None:
                model = m
            elif m != model:
                return rows
            chain = pick(row, "auth_asym_id", "label_asym_id")
            number = int(pick(row, "auth_seq_id", "label_seq_id"))
            key = (chain, number, pick(row, "pdbx_PDB_ins_code"))
            if key in seen:
                continue
            seen.add(key)
            rows.append((chain, number, float(row[col["Cartn_x"]]), float(row[col["Cartn_y"]]),
                         float(row[col["Cartn_z"]])))
    return rows


def _read_ca_gemmi(path):
    import gemmi
    st = gemmi.read_structure(str(path))
    rows = []
    for chain in st[0]:
        for res in chain:
            ca = res.find_atom("CA", "*")
            if ca is None or ca.element.name != "C":
                continue
            rows.append((chain.name, res.seqid.num, ca.pos.x, ca.pos.y, ca.pos.z))
    return rows


def read_ca_trace(path, use_gemmi=None):
    """C-alpha atoms of the first model of a PDB or mmCIF file, in file order:
    ``(coords (R, 3) Å, residue numbers (R,), chain ids (R,))``.

    :param use_gemmi: read with gemmi (None: when it can be imported; otherwise a small reader of
        PDB ATOM/HETATM records or of the mmCIF ``_atom_site`` loop).
    """
    path = str(path)
    if use_gemmi is None:
        try:
            import gemmi  # noqa: F401
            use_gemmi = True
        except ImportError:
            use_gemmi = False
    if use_gemmi:
        rows = _read_ca_gemmi(path)
    else:
        with open(path) as f:
            head = f.read(4096)
        is_cif = path.lower().endswith((".cif", ".mmcif", ".cif.gz")) or "_atom_site." in head \
            or head.lstrip().startswith("data_")
        rows = _read_ca_cif(path) if is_cif else _read_ca_pdb(path)
    if not rows:
        raise ValueError("%s: no C-alpha atoms" % path)
    coords = np.array([r[2:] for r in rows], dtype=np.float64)
    numbers = np.array([r[1] for r in rows], dtype=np.int64)
    chains = np.array([r[0] for r in rows])
    return coords, numbers, chains


# ----------------------------------------------------------------------------- statistics
def residue_ranges(numbers, chains=None, limit=None):
    """Runs of consecutive residue numbers as text: ``"1\u2013120, 200\u2013210"`` (``limit``: at most
    that many runs, then "(+n more)")."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if not len(numbers):
        return "\u2013"
    chains = np.asarray(chains) if chains is not None else np.full(len(numbers), "")
    breaks = np.flatnonzero((np.diff(numbers) != 1) | (chains[1:] != chains[:-1])) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks - 1, [len(numbers) - 1]])
    multi = len(np.unique(chains)) > 1
    parts = []
    for a, b in zip(starts, ends):
        prefix = "%s:" % chains[a] if multi and chains[a] else ""
        parts.append("%s%d" % (prefix, numbers[a]) if a == b else
                     "%s%d\u2013%d" % (prefix, numbers[a], numbers[b]))
    if limit is not None and len(parts) > limit:
        return ", ".join(parts[:limit]) + " (+%d more)" % (len(parts) - limit)
    return ", ".join(parts)


def _ranks(x):
    """Ranks along axis 0 (ties get their mean rank)."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(len(x), -1)
    order = np.argsort(flat, axis=0, kind="stable")
    out = np.empty_like(flat)
    np.put_along_axis(out, order, np.arange(1, len(x) + 1, dtype=np.float64)[:, None], axis=0)
    ordered = np.take_along_axis(flat, order, axis=0)
    for j in np.flatnonzero((np.diff(ordered, axis=0) == 0).any(axis=0)):    # columns with ties
        values, inverse, counts = np.unique(flat[:, j], return_inverse=True, return_counts=True)
        out[:, j] = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse.ravel()]
    return out.reshape(x.shape)


def _rank_correlation(rx, ry):
    """Pearson correlation of ranks rx (N,) with each column of ry (N, K); NaN for a constant one."""
    rx = rx - rx.mean()
    ry = ry - ry.mean(0)
    den = np.sqrt((rx ** 2).sum() * (ry ** 2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx[:, None] * ry).sum(0) / np.where(den > 0, den, 1.0), np.nan)


def spearman(x, y):
    """Spearman rank correlation of ``x`` (N,) with each column of ``y`` (N,) or (N, K); NaN where
    a column is constant."""
    y = np.asarray(y, dtype=np.float64)
    rho = _rank_correlation(_ranks(x), _ranks(y.reshape(len(y), -1)))
    return float(rho[0]) if y.ndim == 1 else rho


def binned_quantiles(x, values, bins):
    """Equal-count bins of ``x`` (N,): ``(centres (B,), quantiles (B, 3, K))`` with the 25th,
    50th and 75th percentiles of each column of ``values`` (N, K) in each bin; the centre is the
    bin's median x."""
    x = np.asarray(x, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(len(x), -1)
    bins = int(max(1, min(bins, len(x))))
    chunks = [c for c in np.array_split(np.argsort(x, kind="stable"), bins) if len(c)]
    centres = np.array([np.median(x[c]) for c in chunks])
    q = np.array([np.percentile(values[c], [25, 50, 75], axis=0) for c in chunks])
    return centres, q.reshape(len(chunks), 3, values.shape[1])


def principal_components(z, n=3, return_ratio=False):
    """Scores of ``z`` (N, D) on its first ``n`` principal components, each oriented so that its
    largest loading is positive (a reproducible sign); with ``return_ratio`` also the fraction of
    the variance each component explains."""
    z = np.asarray(z, dtype=np.float64)
    zc = z - z.mean(0)
    if len(z) < 2 or not z.shape[1]:
        return (np.zeros((len(z), 0)), np.zeros(0)) if return_ratio else np.zeros((len(z), 0))
    _, sv, vt = np.linalg.svd(zc, full_matrices=False)
    vt = vt[:min(n, z.shape[1])]
    sign = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
    scores = zc @ (vt * sign[:, None]).T
    if not return_ratio:
        return scores
    total = float((sv ** 2).sum())
    return scores, (sv[:len(vt)] ** 2 / total if total > 0 else np.zeros(len(vt)))


# ----------------------------------------------------------------------------- ChimeraX
def _signed(value):
    """A correlation as text: "+0.96", "-0.40", "0.00", "\u2013" for NaN."""
    if not np.isfinite(value):
        return "\u2013"
    return "0.00" if abs(value) < 0.005 else "%+.2f" % value


def _hex(rgb):
    return "#%02x%02x%02x" % tuple(int(c) for c in rgb)


def segment_colors(segment_ids):
    """``{segment: (r, g, b)}``: the categorical palette in segment order."""
    return {int(k): PALETTE[i % len(PALETTE)] for i, k in enumerate(segment_ids)}


def chimerax_models_command(paths, numbers, segments, executable=None):
    """ChimeraX command line opening model files, each residue coloured by its segment (the
    colours of :class:`SegmentsWindow`); None without a ChimeraX executable."""
    exe = executable or chimerax_executable()
    if exe is None or not paths:
        return None
    numbers, segments = np.asarray(numbers), np.asarray(segments)
    colors = segment_colors(np.unique(segments))
    cmds = ["open %s" % " ".join('"%s"' % p for p in paths)]
    models = "#1-%d" % len(paths) if len(paths) > 1 else "#1"
    for k, rgb in colors.items():
        spec = residue_ranges(np.sort(numbers[segments == k])).replace("\u2013", "-").replace(" ", "")
        cmds.append("color %s:%s %s" % (models, spec, _hex(rgb)))
    if len(paths) > 1:
        cmds.append("tile")
    return [exe, "--cmd", "; ".join(cmds)]


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

        self._build_3d()
        self._build_plots()
        self._build_table()
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

        self._draw_structure(reset=True)
        self.set_axis(self.axis_name)
        self.statusBar().showMessage(
            "Drag the model to rotate it, wheel to zoom; select a segment in the table to highlight it.")

    # ------------------------------------------------------------------------- construction
    def _build_3d(self):
        self.figure = Figure(figsize=(6.4, 7.0), dpi=100, facecolor="white")
        self.figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.96)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumWidth(320)
        self.canvas.mpl_connect("resize_event", lambda event: self._fit_legend())
        self._legend_rows = 0
        self.ax3d = self.figure.add_subplot(111, projection="3d")
        self._trace = None
        self._dots = None

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

    def _build_table(self):
        self.table = QtWidgets.QTableWidget(0, len(TABLE_HEADERS))
        self.table.setHorizontalHeaderLabels(TABLE_HEADERS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAsNeeded)
        font = self.table.font()
        font.setPointSizeF(font.pointSizeF() * 0.92)
        self.table.setFont(font)
        self.table.setStyleSheet("QTableWidget { gridline-color: #e1e4e8; }"
                                 " QHeaderView::section { background: #f4f6f8; padding: 3px 6px;"
                                 " border: none; border-bottom: 1px solid #d0d7de; font-weight: bold;"
                                 " font-size: 9pt; }")
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        head.setSectionResizeMode(1, QtWidgets.QHeaderView.Stretch)       # the residue ranges
        head.setMinimumSectionSize(36)
        head.setDefaultAlignment(QtCore.Qt.AlignCenter)
        for c, tip in ((7, "Spearman rank correlation of the rotation angle with the landscape axis"),
                       (8, "Spearman rank correlation of the translation with the landscape axis")):
            self.table.horizontalHeaderItem(c).setToolTip(tip)
        self.table.itemSelectionChanged.connect(self._table_selection_changed)

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
        tb.addAction("Reset 3D view", lambda: self._draw_structure(reset=True)).setToolTip(
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

    # ------------------------------------------------------------------------- 3D trace
    def _bonds(self):
        """Indices i where residues i and i + 1 are bonded (same chain, C-alpha gap <= 4.5 Å)."""
        if len(self.coords) < 2:
            return np.zeros(0, dtype=np.int64)
        d = np.linalg.norm(np.diff(self.coords, axis=0), axis=1)
        return np.flatnonzero((d <= MAX_BOND_A) & (self.chains[1:] == self.chains[:-1]))

    def _draw_structure(self, reset=False):
        ax = self.ax3d
        view = None if reset else (ax.elev, ax.azim, ax.get_xlim3d(), ax.get_ylim3d(), ax.get_zlim3d())
        ax.clear()
        c = self.coords
        rgba = np.array([(*[v / 255.0 for v in self.colors[s]], 1.0) for s in self.segments])
        if self.highlighted:
            faded = self.segments != self.highlighted
            rgba[faded, :3] = 0.55 + 0.45 * rgba[faded, :3]               # towards white
            rgba[faded, 3] = 0.35
        bonds = self._bonds()
        mid = 0.5 * (c[bonds] + c[bonds + 1])
        lines = np.concatenate([np.stack([c[bonds], mid], 1), np.stack([mid, c[bonds + 1]], 1)])
        line_colors = np.concatenate([rgba[bonds], rgba[bonds + 1]])     # each half: its residue
        width = np.where(np.concatenate([self.segments[bonds], self.segments[bonds + 1]])
                         == self.highlighted, 3.2, 2.2)
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
        handles = [Line2D([0], [0], color=_hex(self.colors[s]), lw=4 if s == self.highlighted else 3,
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
        self._fit_legend()

    def _fit_legend(self):
        """Room under the 3D view for a legend of ``_legend_rows`` rows (about 17 pixels each)."""
        height = max(self.figure.bbox.height, 100.0)
        self.figure.subplots_adjust(bottom=min(0.5, 0.02 + self._legend_rows * 17.0 / height))
        self.canvas.draw_idle()

    def _legend_label(self, s):
        mask = self.segments == s
        return "Segment %d: %s  (%d)" % (s, residue_ranges(self.numbers[mask], self.chains[mask], limit=3),
                                         int(mask.sum()))

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
            self._value_ranks = (_ranks(self.angle[:, cols]), _ranks(self.translation[:, cols]))
        rx = _ranks(x)
        rho_a, rho_t = (_rank_correlation(rx, r) for r in self._value_ranks)
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
        self._fill_table()
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

    def _fill_table(self):
        self.table.blockSignals(True)
        self.table.setRowCount(len(self._summary_rows))
        for r, row in enumerate(self._summary_rows):
            s = row["segment"]
            pix = QtGui.QPixmap(12, 12)
            pix.fill(QtGui.QColor(*self.colors[s]))
            cells = ["%d" % s, row["residues"], "%d" % row["count"]] + [
                "%.1f" % row[k] for k in ("angle_median", "angle_p95", "translation_median", "translation_p95")] + [
                _signed(row[k]) for k in ("rho_angle", "rho_translation")]
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
                self.table.setItem(r, c, item)
        self.table.setToolTip("\u03c1: Spearman rank correlation with %s" % self.axis_name)
        if self.highlighted in self.segment_ids:
            self.table.selectRow(self.segment_ids.index(self.highlighted))
        self.table.blockSignals(False)

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
        self._draw_structure()
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
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=os.path.dirname(self.models[0]) or None)
