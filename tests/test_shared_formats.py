"""One home for each shared format and measure (issue #26): the viewers read atomic models and maps
with the engine's readers (flexplugin.engine.io.structure, flexplugin.engine.io.mrc), on the models
and maps the other tests write; every principal component analysis is flexplugin.engine.analysis.pca."""
import ast
import importlib.util
import os

import numpy as np
import pytest

from flexplugin.engine.errors import InputError
from flexplugin.engine.io import structure

TESTS = os.path.dirname(os.path.abspath(__file__))


def _gemmi():
    try:
        import gemmi  # noqa: F401
        return True
    except ImportError:
        return False


# ----------------------------------------------------------------------------- atomic models
def _model_texts(test_file):
    """The PDB and mmCIF texts (module constants PDB, CIF) of a test module, read without running it."""
    with open(os.path.join(TESTS, test_file)) as f:
        tree = ast.parse(f.read())
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("PDB", "CIF")}


def _structure_io():
    """tests/engine/test_structure_io.py as a module (its MD-style line and protein + RNA model)."""
    spec = importlib.util.spec_from_file_location("_structure_io_models",
                                                  os.path.join(TESTS, "engine", "test_structure_io.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _md_style(path):
    """An MD-style PDB (names from column 13, no element, chains from the segment ids)."""
    line = _structure_io()._md_line
    lines, serial = [], 1
    for seg, start in (("PROA", 0.0), ("PROB", 20.0)):
        for i, res in enumerate(("MET", "GLY", "LYS")):
            for name, dx in (("N", 0.0), ("CA", 1.0), ("C", 2.0)):
                lines.append(line(serial, name, res, i + 1, (start + 4 * i + dx, 0.0, 0.0), seg))
                serial += 1
    path.write_text("\n".join(lines + ["END"]) + "\n")


def _protein_and_rna(path):
    pytest.importorskip("gemmi")
    st, coords = _structure_io()._protein_and_rna(["H", "H", "H", "R", "R", "R"], [-3, 1, 9999, 1, 2, 3])
    structure.write_ca_model(path, st, coords)


MODELS = {
    "segments.pdb": lambda p: p.write_text(_model_texts("viewers/test_segments_window.py")["PDB"]),
    "segments.cif": lambda p: p.write_text(_model_texts("viewers/test_segments_window.py")["CIF"]),
    "structure_io.pdb": lambda p: p.write_text(_model_texts("engine/test_structure_io.py")["PDB"]),
    "structure_io.cif": lambda p: p.write_text(_model_texts("engine/test_structure_io.py")["CIF"]),
    "md.pdb": _md_style,
    "protein_rna.pdb": _protein_and_rna,
    "protein_rna.cif": _protein_and_rna,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_viewer_trace_is_the_engine_reader(tmp_path, name):
    """read_ca_trace of the viewers gives what the engine reads: read_trace with gemmi and without
    it alike, and the first model of read_structure (where the file's models agree)."""
    from flexplugin.viewers.ca_trace import read_ca_trace
    path = tmp_path / name
    MODELS[name](path)
    readers = [False, True] if _gemmi() else [False]
    ref = structure.read_trace(path, use_gemmi=readers[-1])
    for use_gemmi in readers:
        for got in (read_ca_trace(path, use_gemmi=use_gemmi), structure.read_trace(path, use_gemmi=use_gemmi)):
            np.testing.assert_allclose(got[0], ref[0], atol=1e-9)
            assert list(got[1]) == list(ref[1]) and list(got[2]) == list(ref[2])
    if _gemmi() and not name.startswith("segments."):            # the segments models differ in model 2
        st = structure.read_structure(path)
        np.testing.assert_allclose(ref[0], st.coords[0], atol=1e-9)
        assert list(ref[1]) == list(st.numbers) and list(ref[2]) == list(st.chains)


def test_viewer_trace_errors_name_the_file(tmp_path):
    from flexplugin.viewers.ca_trace import read_ca_trace
    ions = tmp_path / "ions.pdb"
    ions.write_text("HETATM    1 CA    CA B 101      30.000   0.000   0.000  1.00  0.00          CA\n")
    for use_gemmi in ([False, True] if _gemmi() else [False]):
        with pytest.raises(InputError, match="ions.pdb: the atomic model has no C-alpha atoms"):
            structure.read_trace(ions, use_gemmi=use_gemmi)
        with pytest.raises(ValueError, match="ions.pdb: the atomic model has no C-alpha atoms"):
            read_ca_trace(ions, use_gemmi=use_gemmi)
        with pytest.raises(ValueError, match="missing.pdb: cannot read the atomic model"):
            read_ca_trace(tmp_path / "missing.pdb", use_gemmi=use_gemmi)


# ----------------------------------------------------------------------------- maps
def test_viewer_read_map_is_the_engine_reader(tmp_path):
    """read_map is read_mrc (a single section as a volume one voxel deep), on maps written by the
    engine and by mrcfile (other programs: every mode the engine reads, big-endian)."""
    import mrcfile
    from flexplugin.engine.io.mrc import read_mrc
    from flexplugin.viewers.map_files import read_map, write_map
    vol = np.random.default_rng(0).normal(size=(6, 8, 10)).astype(np.float32)
    paths = [write_map(tmp_path / "engine.mrc", vol, apix=2.5)]
    for dtype in (np.int8, np.int16, np.uint16, np.float16, ">f4"):
        paths.append(str(tmp_path / ("mrcfile_%s.mrc" % np.dtype(dtype).str[1:])))
        with mrcfile.new(paths[-1], overwrite=True) as m:
            m.set_data((np.abs(vol) * 20).astype(dtype))
            m.voxel_size = 1.5
    paths.append(write_map(tmp_path / "one_section.mrc", vol[:1], apix=1.2))
    for path in paths:
        data, apix = read_map(path)
        ref, ref_apix = read_mrc(path)
        assert data.dtype == np.float32 and data.ndim == 3
        np.testing.assert_array_equal(data, ref.reshape(data.shape))
        assert apix == ref_apix > 0
        with mrcfile.open(path, permissive=True) as m:       # what the viewers read before
            np.testing.assert_array_equal(data, np.asarray(m.data, dtype=np.float32).reshape(data.shape))
            assert apix == pytest.approx(float(m.voxel_size.x))
    bad = tmp_path / "bad.mrc"
    bad.write_bytes(b"\x1f\x8b" + bytes(2000))
    with pytest.raises(ValueError, match="bad.mrc: a compressed file"):
        read_map(bad)


# ----------------------------------------------------------------------------- principal components
def _latent_points(n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * rng.uniform(0.2, 4.0, d) + rng.normal(size=d)


def test_pca_is_scikit_learns_pca():
    """The landscape analysis used scikit-learn's PCA: the same components, signs included (the
    largest loading positive), scores and variance ratios, to float rounding."""
    sklearn = pytest.importorskip("sklearn.decomposition")
    from flexplugin.engine.analysis.pca import pca
    z = _latent_points()
    p = sklearn.PCA(n_components=3, svd_solver="full").fit(z)
    scores, components, ratio, mean = pca(z, 3)
    np.testing.assert_allclose(components, p.components_, atol=1e-12)
    np.testing.assert_allclose(scores, p.transform(z), atol=1e-10)
    np.testing.assert_allclose(ratio, p.explained_variance_ratio_, atol=1e-12)
    np.testing.assert_allclose(mean, p.mean_, atol=1e-12)


@pytest.mark.parametrize("shape", [(400, 6), (300, 1), (2, 5), (1, 4), (50, 0)])
def test_every_caller_is_the_one_pca(shape):
    """The landscape analysis, the pose measures (PC1), the segments window and the landscape
    window of a set without an analysis give what flexplugin.engine.analysis.pca.pca gives, each
    with its sign rule (the segments window: largest loading positive; PC1 and the landscape
    window: the SVD's own)."""
    from flexplugin.engine.analysis import landscape, poses
    from flexplugin.engine.analysis.pca import pca
    from flexplugin.viewers import app, segment_stats
    z = _latent_points(*shape) if shape[1] else np.zeros(shape)
    assert landscape.pca is pca
    pc1 = pca(z, 1, orient=False)[0]
    np.testing.assert_array_equal(poses.pc1(z), pc1[:, 0] if pc1.shape[1] else np.zeros(len(z)))
    if len(z) >= 2 and z.shape[1]:
        scores, _, ratio, _ = pca(z, 3)
        got, got_ratio = segment_stats.principal_components(z, return_ratio=True)
        np.testing.assert_array_equal(got, scores)
        np.testing.assert_array_equal(got_ratio, ratio)
        scores, _, ratio, _ = pca(z, 3, orient=False)
        got, got_ratio = app.z_components(z)
        np.testing.assert_array_equal(got, scores)
        np.testing.assert_array_equal(got_ratio, ratio)
    else:                                         # fewer than two points or no components
        assert segment_stats.principal_components(z).shape == (len(z), 0)
        assert app.z_components(z)[0].shape == (len(z), min(3, z.shape[1]))


def test_no_other_pca():
    """No module of the plugin or the benchmarks computes principal components of its own."""
    root = os.path.dirname(TESTS)
    own = os.path.join("flexplugin", "engine", "analysis", "pca.py")
    found = []
    for top in ("flexplugin", "protocols", "viewers", "benchmarks"):
        for folder, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                path = os.path.join(folder, name)
                if not name.endswith(".py") or os.path.relpath(path, root) == own:
                    continue
                with open(path) as f:
                    text = f.read()
                found += ["%s: %s" % (os.path.relpath(path, root), what) for what in
                          ("linalg.svd(zc", "decomposition import PCA", "PCA(n_components") if what in text]
    assert not found, found
