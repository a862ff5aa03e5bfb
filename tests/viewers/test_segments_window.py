"""The cryoSPHERE segments window (offscreen) on a synthetic two-domain model whose second domain
rotates and moves with the landscape coordinate, the C-alpha reader, and the app's loader of a
training folder. Screenshot: tests/artifacts/viewer_segments.png."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest

QtWidgets = pytest.importorskip("PyQt5.QtWidgets")
pytest.importorskip("pyqtgraph")
pytest.importorskip("matplotlib")

from viewer_helpers import screenshot  # noqa: E402

N_A, N_B = 97, 56           # residues of the two domains (1..97 and 98..153)


# ----------------------------------------------------------------------------- synthetic data
def _helix(n, x, y, up):
    """An alpha helix of n C-alpha atoms along z (3.8 Å steps), axis at (x, y)."""
    t = np.arange(n)
    z = 1.5 * t if up else 1.5 * (n - 1 - t)
    return np.column_stack([x + 2.3 * np.cos(np.deg2rad(100 * t)), y + 2.3 * np.sin(np.deg2rad(100 * t)),
                            z - 0.75 * (n - 1)])


def _link(a, b):
    """C-alpha atoms between a and b, about 3.8 Å apart (neither end included)."""
    k = max(1, int(np.ceil(np.linalg.norm(b - a) / 3.8)))
    return a + (b - a) * (np.arange(1, k) / k)[:, None]


def _chain(helices):
    parts = []
    for h in helices:
        if parts:
            parts.append(_link(parts[-1][-1], h[0]))
        parts.append(h)
    return np.vstack(parts)


def two_domain_model():
    """(coords (153, 3) Å, segment (153,) 1 or 2, residue numbers 1..153): a three-helix domain
    and a two-helix domain beside it."""
    a = _chain([_helix(30, 0, 0, True), _helix(30, 10, 0, False), _helix(30, 5, 8.7, True)])
    b = _chain([_helix(26, 26, 4, False), _helix(26, 35, 4, True)])
    coords = np.vstack([a, _link(a[-1], b[0]), b])
    assert len(coords) == N_A + N_B, len(coords)
    segment = np.r_[np.ones(N_A, int), np.full(N_B, 2)]
    return coords, segment, np.arange(1, len(coords) + 1)


def motions(n=1200, k=4, seed=0):
    """Per particle: landscape coordinate s in [-1, 1], z (n, 4) with z1 = 2 s + noise, angles
    (n, k) and translations (n, k, 3): segment 2 rotates 20 + 15 s degrees and moves 3 + 2 s Å,
    segment 1 hardly moves, segments 3 and 4 are empty."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(-1, 1, n)
    z = np.column_stack([2 * s + 0.2 * rng.normal(size=n), 0.5 * rng.normal(size=(n, 3))])
    angle = np.zeros((n, k))
    angle[:, 0] = np.abs(rng.normal(0, 1.0, n))
    angle[:, 1] = 20 + 15 * s + 2 * rng.normal(size=n)
    translation = 0.3 * rng.normal(size=(n, k, 3))
    translation[:, 1, 0] += 3 + 2 * s
    return s, z, angle, translation


# ----------------------------------------------------------------------------- the window
def test_segments_window_summary_axes_and_highlight(qapp, tmp_path):
    from flexplugin.viewers.ca_trace import ca_bonds
    from flexplugin.viewers.segments_window import SegmentsWindow, spearman
    coords, segment, numbers = two_domain_model()
    s, z, angle, translation = motions()
    win = SegmentsWindow(coords, segment, numbers, angle, translation, z, title="hinge")
    assert win.windowTitle() == "hinge" and win.segment_ids == [1, 2]           # 3 and 4 are empty
    assert win.axis_names() == ["PC 1", "PC 2", "PC 3", "z1", "z2", "z3", "z4"]
    assert win.axis_name == "PC 1" and win.axis_combo.currentText() == "PC 1"
    assert spearman(win.coordinate, s) > 0.95                                    # PC 1 follows s, sign fixed
    assert len(ca_bonds(win.coords, win.chains, win.numbers)) == len(coords) - 1  # one unbroken chain

    rows = win.segment_summary()
    assert [r["segment"] for r in rows] == [1, 2]
    assert [(r["residues"], r["count"]) for r in rows] == [("1\u201397", N_A), ("98\u2013153", N_B)]
    magnitude = np.linalg.norm(translation, axis=-1)
    for r, col in zip(rows, (0, 1)):
        assert r["angle_median"] == pytest.approx(np.median(angle[:, col]))
        assert r["angle_p95"] == pytest.approx(np.percentile(angle[:, col], 95))
        assert r["translation_median"] == pytest.approx(np.median(magnitude[:, col]))
        assert r["translation_p95"] == pytest.approx(np.percentile(magnitude[:, col], 95))
    assert rows[1]["angle_median"] == pytest.approx(20, abs=1.5)
    assert rows[1]["rho_angle"] > 0.9 and rows[1]["rho_translation"] > 0.8
    assert abs(rows[0]["rho_angle"]) < 0.15 and abs(rows[0]["rho_translation"]) < 0.15
    assert win.table.rowCount() == 2 and win.table.item(1, 1).text() == "98\u2013153"
    assert win.table.item(1, 3).text() == "%.1f" % rows[1]["angle_median"]
    assert "segment 2" in win.header.text()

    # binned medians: segment 2's angle climbs from about 5 to 35 degrees along PC 1
    prof = win.profiles[2]
    assert len(prof["x"]) == win.bins and np.all(np.diff(prof["x"]) > 0)
    med = prof["angle"][:, 1]
    assert spearman(prof["x"], med) > 0.95 and med[0] < 12 and med[-1] > 28
    assert np.all(prof["angle"][:, 0] <= med) and np.all(med <= prof["angle"][:, 2])
    x, y = win.curves[(2, "angle")].getData()
    np.testing.assert_allclose(y, med)
    win.set_bins(8)
    assert len(win.profiles[1]["x"]) == 8 and win.bins_spin.value() == 8

    # another axis: a noise component; through the combo box: z1
    seen = []
    win.axisChanged.connect(seen.append)
    win.set_axis("z3")
    assert win.axis_combo.currentText() == "z3"
    assert abs(win.segment_summary()[1]["rho_angle"]) < 0.15
    assert "no segment follows" in win.header.text()
    win.axis_combo.setCurrentText("z1")
    assert win.axis_name == "z1" and seen == ["z3", "z1"]
    assert win.segment_summary()[1]["rho_angle"] > 0.9
    assert win.plots["angle"].getAxis("bottom").labelText == "z1"
    with pytest.raises(KeyError):
        win.set_axis("UMAP 1")

    # highlight from code and from the table
    win.highlight_segment(2)
    assert win.highlighted == 2 and win.table.selectionModel().selectedRows()[0].row() == 1
    win.table.selectRow(0)
    assert win.highlighted == 1
    win.highlight_segment(None)
    assert win.highlighted == 0 and not win.table.selectionModel().selectedRows()
    with pytest.raises(KeyError):
        win.highlight_segment(3)                                                 # empty segment

    assert win.save_table(tmp_path / "segments.csv") == 2
    with open(tmp_path / "segments.csv") as f:
        table = list(csv.DictReader(f))
    assert table[1]["residues"] == "98\u2013153" and float(table[1]["rho_angle"]) > 0.9

    win.set_axis("PC 1")
    win.set_bins(24)
    win.set_show_particles(True)
    assert win.particles_box.isChecked()
    screenshot(win, "segments")
    win.highlight_segment(2)
    win.set_show_particles(False)
    screenshot(win, "segments_highlight")
    win.close()


def test_segments_window_one_coordinate_and_checks(qapp):
    from flexplugin.viewers.segments_window import SegmentsWindow
    coords, segment, numbers = two_domain_model()
    s, z, angle, translation = motions(n=300)
    win = SegmentsWindow(coords, segment, numbers, angle, translation, s, extra_axes={"UMAP 1": z[:, 1]})
    assert win.axis_names() == ["landscape coordinate", "UMAP 1"]
    assert win.segment_summary()[1]["rho_angle"] > 0.9
    win.set_axis("UMAP 1")
    assert win.axis_name == "UMAP 1"
    win.close()
    with pytest.raises(ValueError, match="1..4"):
        SegmentsWindow(coords, segment + 3, numbers, angle, translation, z)
    with pytest.raises(ValueError, match="same residues"):
        SegmentsWindow(coords[:-1], segment, numbers, angle, translation, z)
    with pytest.raises(ValueError, match="rows"):
        SegmentsWindow(coords, segment, numbers, angle, translation, z[:-1])


def test_segments_window_axis_names(qapp):
    from flexplugin.viewers.segments_window import SegmentsWindow
    rng = np.random.default_rng(4)
    n = 300
    s = rng.uniform(-1, 1, n)
    z = 1e-3 * np.column_stack([2 * s, 0.3 * rng.normal(size=(n, 2))])    # tiny latent values
    coords = np.column_stack([np.arange(20) * 3.8, np.zeros(20), np.zeros(20)])
    angle = np.column_stack([np.abs(rng.normal(size=n)), 20 + 15 * s])
    translation = 0.3 * rng.normal(size=(n, 2, 3))
    win = SegmentsWindow(coords, np.r_[np.ones(10, int), np.full(10, 2)], np.arange(1, 21), angle,
                         translation, z)
    ax = win.plots["angle"].getAxis("bottom")
    assert ax.labelText.startswith("PC 1 of z (") and ax.labelText.endswith("% of variance)")
    assert "(x" not in ax.labelString() and not win.plots["translation"].getAxis("left").autoSIPrefix
    win.close()


def test_statistics_helpers():
    from flexplugin.viewers.segments_window import binned_quantiles, residue_ranges, spearman
    assert residue_ranges([1, 2, 3, 7, 9, 10]) == "1\u20133, 7, 9\u201310"
    assert residue_ranges([5, 6, 5, 6], chains=["A", "A", "B", "B"]) == "A:5\u20136, B:5\u20136"
    assert residue_ranges(np.arange(0, 20, 2), limit=3) == "0, 2, 4 (+7 more)"
    x = np.arange(100.0)
    assert spearman(x, x ** 3) == pytest.approx(1.0) and spearman(x, -x) == pytest.approx(-1.0)
    assert np.isnan(spearman(x, np.ones(100)))
    centres, q = binned_quantiles(x, np.column_stack([x, 2 * x]), 4)
    np.testing.assert_allclose(centres, [12, 37, 62, 87])
    np.testing.assert_allclose(q[:, 1, 0], centres) and np.testing.assert_allclose(q[:, 1, 1], 2 * centres)
    np.testing.assert_allclose(q[0, :, 0], np.percentile(np.arange(25.0), [25, 50, 75]))


def test_trace_bonds_protein_rna_breaks():
    """Amino acids 3.8 Å apart and nucleotides ~6 Å apart are bonded; a chain change, a numbering
    gap and a long jump are breaks."""
    from flexplugin.viewers.ca_trace import ca_bonds
    x = np.array([0, 3.8, 7.6, 11.4,           # protein A 1-4
                  30, 36, 42,                  # RNA B 1-3 (C4' 6 Å apart)
                  48, 54,                      # B 5-6: after a numbering gap
                  80])                         # B 7: 26 Å away
    coords = np.column_stack([x, np.zeros_like(x), np.zeros_like(x)])
    chains = np.array(list("AAAA") + list("BBBBBB"))
    numbers = np.array([1, 2, 3, 4, 1, 2, 3, 5, 6, 7])
    assert list(ca_bonds(coords, chains, numbers)) == [0, 1, 2, 4, 5, 7]
    assert list(ca_bonds(coords, chains)) == [0, 1, 2, 4, 5, 6, 7]          # without numbers
    assert len(ca_bonds(coords[:1], chains[:1])) == 0


# ----------------------------------------------------------------------------- model files
PDB = """\
HEADER    TEST
ATOM      1  N   ALA A   1      -1.000   0.000   0.000  1.00  0.00           N
ATOM      2  CA  ALA A   1       0.000   0.000   0.000  1.00  0.00           C
ATOM      3  C   ALA A   1       1.000   0.500   0.000  1.00  0.00           C
ATOM      4  CA AGLY A   2       3.800   0.000   0.000  0.50  0.00           C
ATOM      5  CA BGLY A   2       3.900   0.100   0.000  0.50  0.00           C
HETATM    6  CA  MSE A   3       7.600   0.000   0.000  1.00  0.00           C
ATOM      7  CA  LYS B  10      20.000   1.000   2.000  1.00  0.00           C
HETATM    8 CA    CA B 101      30.000   0.000   0.000  1.00  0.00          CA
ENDMDL
MODEL        2
ATOM      9  CA  ALA A   1      99.000  99.000  99.000  1.00  0.00           C
END
"""

CIF = """\
data_test
#
loop_
_atom_site.group_PDB
_atom_site.id
_atom_site.type_symbol
_atom_site.label_atom_id
_atom_site.label_alt_id
_atom_site.label_comp_id
_atom_site.label_asym_id
_atom_site.label_seq_id
_atom_site.pdbx_PDB_ins_code
_atom_site.Cartn_x
_atom_site.Cartn_y
_atom_site.Cartn_z
_atom_site.occupancy
_atom_site.B_iso_or_equiv
_atom_site.auth_seq_id
_atom_site.auth_asym_id
_atom_site.pdbx_PDB_model_num
ATOM   1 N  N   . ALA A 1 ? -1.000 0.000 0.000 1.00 0.00 1   A 1
ATOM   2 C  CA  . ALA A 1 ? 0.000 0.000 0.000 1.00 0.00 1   A 1
ATOM   3 C  C   . ALA A 1 ? 1.000 0.500 0.000 1.00 0.00 1   A 1
ATOM   4 C  CA  A GLY A 2 ? 3.800 0.000 0.000 0.50 0.00 2   A 1
ATOM   5 C  CA  B GLY A 2 ? 3.900 0.100 0.000 0.50 0.00 2   A 1
HETATM 6 C  CA  . MSE A 3 ? 7.600 0.000 0.000 1.00 0.00 3   A 1
ATOM   7 C  CA  . LYS B 1 ? 20.000 1.000 2.000 1.00 0.00 10  B 1
HETATM 8 CA CA  . CA  C . ? 30.000 0.000 0.000 1.00 0.00 101 B 1
ATOM   9 C  CA  . ALA A 1 ? 99.000 99.000 99.000 1.00 0.00 1   A 2
#
"""

EXPECTED = (np.array([[0, 0, 0], [3.8, 0, 0], [7.6, 0, 0], [20, 1, 2]], dtype=float),
            [1, 2, 3, 10], ["A", "A", "A", "B"])


@pytest.mark.parametrize("name, text", [("model.pdb", PDB), ("model.cif", CIF)])
def test_read_ca_trace(tmp_path, name, text):
    from flexplugin.viewers.segments_window import read_ca_trace
    path = tmp_path / name
    path.write_text(text)
    readers = [False]
    try:
        import gemmi  # noqa: F401
        readers.append(True)
    except ImportError:
        pass
    for use_gemmi in readers:              # the small reader, and gemmi where installed: the same atoms
        coords, numbers, chains = read_ca_trace(path, use_gemmi=use_gemmi)
        np.testing.assert_allclose(coords, EXPECTED[0], atol=1e-6)
        assert list(numbers) == EXPECTED[1] and list(chains) == EXPECTED[2]
    empty = tmp_path / "empty.pdb"
    empty.write_text("HETATM    1 CA    CA B 101      30.000   0.000   0.000  1.00  0.00          CA\n")
    with pytest.raises(ValueError, match="no C-alpha"):
        read_ca_trace(empty, use_gemmi=False)


def test_chimerax_command_colours_segments():
    from flexplugin.viewers.segments_window import PALETTE, chimerax_models_command
    numbers = np.arange(1, 11)
    segments = np.r_[np.ones(4, int), np.full(3, 3), np.ones(3, int)]
    cmd = chimerax_models_command(["/m/a.pdb", "/m/b.pdb"], numbers, segments, executable="chimerax")
    assert cmd[:2] == ["chimerax", "--cmd"]
    parts = cmd[2].split("; ")
    assert parts[0] == 'open "/m/a.pdb" "/m/b.pdb"' and parts[-1] == "tile"
    assert parts[1] == "color #1-2:1-4,8-10 #%02x%02x%02x" % PALETTE[0]
    assert parts[2] == "color #1-2:5-7 #%02x%02x%02x" % PALETTE[1]
    assert chimerax_models_command([], numbers, segments, executable="chimerax") is None


# ----------------------------------------------------------------------------- the app's loader
def _write_run(folder, coords, segment, numbers, angle, translation, z):
    """A cryoSPHERE training folder as the engine writes it, and a PDB of the input model."""
    os.makedirs(folder, exist_ok=True)
    np.savetxt(os.path.join(folder, "segments.txt"), np.column_stack([numbers, segment]), fmt="%d",
               header="residue_number segment")
    axis = np.zeros_like(translation)
    axis[..., 2] = 1.0
    np.savez(os.path.join(folder, "segment_motions.npz"), angle_deg=angle, axis=axis,
             translation_A=translation)
    np.save(os.path.join(folder, "z.npy"), z.astype(np.float32))
    pdb = os.path.join(os.path.dirname(folder), "model.pdb")
    with open(pdb, "w") as f:
        for i, (n, (x, y, w)) in enumerate(zip(numbers, coords), start=1):
            f.write("ATOM  %5d  N   ALA A%4d    %8.3f%8.3f%8.3f  1.00  0.00           N\n"
                    % (2 * i - 1, n, x - 1.0, y, w))
            f.write("ATOM  %5d  CA  ALA A%4d    %8.3f%8.3f%8.3f  1.00  0.00           C\n"
                    % (2 * i, n, x, y, w))
        f.write("HETATM 9999 CA    CA A 900       0.000   0.000   0.000  1.00  0.00          CA\nEND\n")
    return pdb


def test_app_segments_loader_and_window(qapp, tmp_path, monkeypatch):
    from flexplugin.viewers import app
    coords, segment, numbers = two_domain_model()
    s, z, angle, translation = motions(n=400)
    folder = str(tmp_path / "extra" / "train")
    pdb = _write_run(folder, coords, segment, numbers, angle, translation, z)
    data = app.segments_data(folder, pdb)
    assert set(data) == {"coords", "segments", "numbers", "chains", "angle_deg", "translation_A", "z"}
    np.testing.assert_allclose(data["coords"], coords, atol=1e-3)            # PDB precision
    np.testing.assert_array_equal(data["segments"], segment)
    np.testing.assert_array_equal(data["numbers"], numbers)
    np.testing.assert_array_equal(data["angle_deg"], angle)
    np.testing.assert_array_equal(data["translation_A"], translation)
    np.testing.assert_allclose(data["z"], z, rtol=1e-6)
    # the segmentation may hold fewer residues than the model: matched in order by number
    np.testing.assert_array_equal(app.match_residues([3, 5, 5], [1, 3, 5, 5, 7]), [1, 2, 3])
    with pytest.raises(ValueError, match="residue 4"):
        app.match_residues([3, 4], [1, 3, 5])
    # the program: --train-dir / --structure, a screenshot instead of an event loop
    shot = tmp_path / "segments.png"
    monkeypatch.setenv("FLEXPLUGIN_SCREENSHOT", str(shot))
    assert app.main(["segments", "--train-dir", folder, "--structure", pdb]) == 0
    assert shot.stat().st_size > 10000
    with pytest.raises(SystemExit, match="train-dir"):
        app.main(["segments", "--structure", pdb])
    with pytest.raises(SystemExit, match="ChimeraX"):
        app.main(["segments", "--train-dir", folder, "--structure", pdb, "--chimerax"])


def test_segments_window_does_not_import_torch():
    code = ("import sys, flexplugin.viewers.segments_window; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert proc.returncode == 0, proc.stderr[-2000:]


# ----------------------------------------------------------------------------- the Scipion viewer
class _Model:
    def __init__(self, path):
        self.path = path

    def getFileName(self):
        return self.path


class _Run:
    """The parts of a ProtFlexCryoSphere run the viewer reads."""

    def __init__(self, folder, models):
        self.folder, self.outputStructures = folder, models

    def _outDir(self, *paths):
        return os.path.join(self.folder, *paths)

    def hasAttribute(self, name):
        return name == "outputStructures" and bool(self.outputStructures)

    def getObjId(self):
        return 7


def test_cryosphere_viewer_entries(tmp_path, monkeypatch):
    pytest.importorskip("pwem")
    from pwem import Domain
    from pyworkflow.viewer import DESKTOP_TKINTER, MessageView

    from flexplugin.protocols import ProtFlexCryoSphere
    from flexplugin.viewers.viewer_flex import AppView, FlexCryoSphereViewer, FlexTrainingViewer
    found = Domain.findViewers(ProtFlexCryoSphere(), DESKTOP_TKINTER)
    assert found[0] is FlexCryoSphereViewer and issubclass(found[0], FlexTrainingViewer)
    assert set(FlexCryoSphereViewer._getVisualizeDict(object.__new__(FlexCryoSphereViewer))) == {
        "showCurves", "showLandscape", "showConsensus", "showSegments", "showModels"}

    folder = tmp_path / "Runs" / "000007_ProtFlexCryoSphere" / "extra" / "train"
    folder.mkdir(parents=True)
    viewer = object.__new__(FlexCryoSphereViewer)
    viewer._tkRoot = None
    viewer.protocol = _Run(str(folder), [_Model("Runs/models/model_%d.pdb" % i) for i in (1, 2)])
    viewer.getProject = lambda: type("Project", (), {"getPath": lambda self: str(tmp_path)})()
    (view,) = viewer._showSegments()
    assert isinstance(view, MessageView) and "no segmentation yet" in view.getMessage()
    (folder / "segment_motions.npz").write_bytes(b"")
    (view,) = viewer._showSegments()
    assert isinstance(view, AppView)
    assert view.command()[-5:] == ["segments", "--project", str(tmp_path), "--protocol", "7"]

    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))              # no ChimeraX: the files listed
    monkeypatch.delenv("CHIMERA_HOME", raising=False)
    (view,) = viewer._showModels()
    assert isinstance(view, MessageView)
    assert str(tmp_path / "Runs" / "models" / "model_2.pdb") in view.getMessage()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "chimerax"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    (view,) = viewer._showModels()
    assert isinstance(view, AppView) and view.command()[-1] == "--chimerax"
