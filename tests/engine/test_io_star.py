"""RELION STAR: the parser, the three dialects (3.0, 3.1, 5), round trips and every malformed case."""
import os

import mrcfile
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexplugin.engine.errors import InputError
from flexplugin.engine.geometry import so3
from flexplugin.engine.io import read_particles
from flexplugin.engine.io.star import read_star, read_star_particles, write_star
from flexplugin.engine.io.table import ParticleTable

BOX = 16
RNG = np.random.default_rng(7)
N = 5
ROT, TILT, PSI = RNG.uniform(-180, 180, N), RNG.uniform(5, 175, N), RNG.uniform(-180, 180, N)
SHX, SHY = RNG.uniform(-3, 3, N), RNG.uniform(-3, 3, N)
DFU = RNG.uniform(10000, 20000, N)
DFV, DFA = DFU - 300.5, RNG.uniform(0, 180, N)
# particle i -> (stack, 1-based index)
IMAGES = [("mic1", 1), ("mic1", 3), ("mic2", 2), ("mic1", 2), ("mic2", 1)]


def _project(tmp_path):
    """A RELION project: stacks in Extract/job012/Movies, the star file in Refine3D/job020."""
    movies = tmp_path / "project" / "Extract" / "job012" / "Movies"
    movies.mkdir(parents=True)
    for name, n in (("mic1", 3), ("mic2", 2)):
        with mrcfile.new(str(movies / (name + ".mrcs"))) as m:
            m.set_data(np.zeros((n, BOX, BOX), np.float32))
            m.set_image_stack()
            m.voxel_size = 1.5
    job = tmp_path / "project" / "Refine3D" / "job020"
    job.mkdir(parents=True)
    return job, movies


def _loop(columns, rows, trailing=""):
    head = "loop_ \n" + "".join("_%s #%d %s\n" % (c, i + 1, trailing) for i, c in enumerate(columns))
    return head + "".join(" ".join(str(v) for v in r) + trailing + "\n" for r in rows)


def _relion30(job):
    cols = ["rlnMicrographName", "rlnCoordinateX", "rlnImageName", "rlnDefocusU", "rlnDefocusV",
            "rlnDefocusAngle", "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast",
            "rlnMagnification", "rlnDetectorPixelSize", "rlnCtfFigureOfMerit", "rlnAngleRot",
            "rlnAngleTilt", "rlnAnglePsi", "rlnOriginX", "rlnOriginY", "rlnClassNumber"]
    rows = [("Movies/%s.mrc" % s, 100.0 + i, "%06d@Extract/job012/Movies/%s.mrcs" % (k, s), "%.6f" % DFU[i],
             "%.6f" % DFV[i], "%.6f" % DFA[i], 300, 2.7, 0.1, 10000.0, 1.5, 0.12, "%.6f" % ROT[i],
             "%.6f" % TILT[i], "%.6f" % PSI[i], "%.6f" % (SHX[i] / 1.5), "%.6f" % (SHY[i] / 1.5), i % 2 + 1)
            for i, (s, k) in enumerate(IMAGES)]
    path = job / "run_data.star"
    path.write_text("# RELION; version 3.0\n\ndata_\n\n" + _loop(cols, rows, trailing="  ") + "\n\n")
    return path


def _relion31(job, version="30001", general="", ints="%d", quoted="'my micrograph.mrc'"):
    optics = _loop(["rlnOpticsGroupName", "rlnOpticsGroup", "rlnMicrographOriginalPixelSize", "rlnVoltage",
                    "rlnSphericalAberration", "rlnAmplitudeContrast", "rlnImagePixelSize", "rlnImageSize",
                    "rlnImageDimensionality", "rlnBeamTiltX"],
                   [("opticsGroup1", ints % 1, 0.75, 300.0, 2.7, 0.1, 1.5, ints % BOX, ints % 2, 0.1),
                    ("opticsGroup2", ints % 2, 0.75, 200.0, 2.0, 0.07, 1.5, ints % BOX, ints % 2, -0.2)])
    cols = ["rlnImageName", "rlnMicrographName", "rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi",
            "rlnOriginXAngst", "rlnOriginYAngst", "rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle",
            "rlnPhaseShift", "rlnCtfBfactor", "rlnOpticsGroup", "rlnGroupNumber", "rlnRandomSubset"]
    rows = [("%06d@%s" % (k, job.parent.parent / "Extract" / "job012" / "Movies" / (s + ".mrcs"))
             if i == 4 else "%06d@Extract/job012/Movies/%s.mrcs" % (k, s),
             quoted if i == 0 else "mic%d.mrc" % i, "%.6f" % ROT[i], "%.6f" % TILT[i], "%.6f" % PSI[i],
             "%.6f" % SHX[i], "%.6f" % SHY[i], "%.6f" % DFU[i], "%.6f" % DFV[i], "%.6f" % DFA[i],
             "%.1f" % (10.0 * i), -5.0, ints % (i % 2 + 1), ints % 1, ints % (i % 2 + 1))
            for i, (s, k) in enumerate(IMAGES)]
    text = ("\n# version %s\n\n%sdata_optics\n\n%s\n\n# version %s\n\ndata_particles\n\n%s\n"
            % (version, general, optics, version, _loop(cols, rows)))
    path = job / "run_data.star"
    path.write_text(text)
    return path


def _relion5(job):
    general = "data_general\n\n_rlnTomoSubTomosAre2DStacks                       1\n\n# version 50001\n\n"
    path = _relion31(job, version="50001", general=general, ints="%.6f")
    text = path.read_text().replace("_rlnRandomSubset #15 \n", "_rlnRandomSubset #15 \n_rlnTomoName #16 \n")
    text = text.replace("000003@", "3.0@")                      # an image number written as a float
    lines = [ln + (" TS_01" if ln.count("@") else "") for ln in text.split("\n")]
    path.write_text("\n".join(lines))
    return path


def _check_common(t, movies):
    assert len(t) == N and t.box == BOX and t.apix == pytest.approx(1.5)
    assert [os.path.basename(t.stacks[s]) for s in t.stack_id] == [s + ".mrcs" for s, _ in IMAGES]
    assert all(os.path.dirname(p) == str(movies) for p in t.stacks)
    np.testing.assert_array_equal(t.index, [k - 1 for _, k in IMAGES])
    np.testing.assert_allclose(t.rotations, so3.euler_to_matrix(ROT, TILT, PSI), atol=1e-6)
    np.testing.assert_allclose(t.shifts_A, np.stack([SHX, SHY], 1), atol=1e-5)
    np.testing.assert_allclose(t.ctf_field("defocus_u"), DFU, atol=1e-5)
    np.testing.assert_allclose(t.ctf_field("defocus_v"), DFV, atol=1e-5)
    np.testing.assert_allclose(t.ctf_field("defocus_angle"), DFA, atol=1e-5)


def test_relion30(tmp_path):
    job, movies = _project(tmp_path)
    t = read_particles(_relion30(job))
    _check_common(t, movies)
    assert t.optics == [] and t.optics_group is None
    np.testing.assert_allclose(t.ctf[:, 3:8], [[300, 2.7, 0.1, 0, 0]] * N)
    assert sorted(t.extra) == ["rlnClassNumber", "rlnCoordinateX", "rlnCtfFigureOfMerit", "rlnMicrographName"]
    assert list(t.extra["rlnClassNumber"]) == ["1", "2", "1", "2", "1"]


def test_relion31(tmp_path):
    job, movies = _project(tmp_path)
    t = read_star_particles(_relion31(job))
    _check_common(t, movies)
    np.testing.assert_array_equal(t.optics_group, [1, 2, 1, 2, 1])
    np.testing.assert_allclose(t.ctf_field("voltage"), [300, 200, 300, 200, 300])
    np.testing.assert_allclose(t.ctf_field("amp_contrast"), [0.1, 0.07, 0.1, 0.07, 0.1])
    np.testing.assert_allclose(t.ctf_field("phase_shift"), 10.0 * np.arange(N))
    np.testing.assert_allclose(t.ctf_field("bfactor"), -5.0)
    assert sorted(t.extra) == ["rlnGroupNumber", "rlnMicrographName", "rlnRandomSubset"]
    assert t.extra["rlnMicrographName"][0] == "my micrograph.mrc"
    assert [r["rlnBeamTiltX"] for r in t.optics] == ["0.1", "-0.2"]


def test_relion5_extra_blocks_and_float_ints(tmp_path):
    job, movies = _project(tmp_path)
    t = read_star_particles(_relion5(job))
    _check_common(t, movies)
    np.testing.assert_array_equal(t.optics_group, [1, 2, 1, 2, 1])
    assert list(t.extra["rlnTomoName"]) == ["TS_01"] * N
    assert t.optics[0]["rlnImageSize"] == "16.000000"


@pytest.mark.parametrize("make", [_relion30, _relion31, _relion5])
def test_round_trip_to_31_keeps_every_field(tmp_path, make):
    job, movies = _project(tmp_path)
    a = read_star_particles(make(job))
    out = job / "out" / "particles.star"
    out.parent.mkdir()
    write_star(out, a)
    text = out.read_text()
    assert "# version 30001" in text and "data_optics" in text and "data_particles" in text
    assert "@" + str(movies) in text              # stacks outside the star's folder: absolute
    b = read_star_particles(out)
    assert [a.stacks[i] for i in a.stack_id] == [b.stacks[i] for i in b.stack_id]
    np.testing.assert_array_equal(a.index, b.index)
    assert (a.apix, a.box) == (b.apix, b.box)
    np.testing.assert_allclose(b.rotations, a.rotations, atol=1e-5)
    np.testing.assert_allclose(b.shifts_A, a.shifts_A, rtol=1e-9)
    np.testing.assert_allclose(b.ctf, a.ctf, rtol=1e-9)
    assert sorted(a.extra) == sorted(b.extra)
    for k in a.extra:
        np.testing.assert_array_equal(a.extra[k], b.extra[k])
    if a.optics_group is not None:
        np.testing.assert_array_equal(a.optics_group, b.optics_group)
    for ra, rb in zip(a.optics, b.optics):
        for k, v in ra.items():
            assert v == rb[k] or float(v) == pytest.approx(float(rb[k])), k


def test_write_relative_paths_inside_folder(tmp_path):
    job, movies = _project(tmp_path)
    t = read_star_particles(_relion31(job))
    out = tmp_path / "project" / "particles.star"
    write_star(out, t, extra_columns={"rlnClassNumber": np.arange(N) + 1})
    text = out.read_text()
    assert "000001@Extract/job012/Movies/mic1.mrcs" in text and str(movies) not in text
    back = read_star_particles(out)
    assert list(back.extra["rlnClassNumber"]) == ["1", "2", "3", "4", "5"]
    with pytest.raises(ValueError, match="rlnAngleRot"):
        write_star(out, t, extra_columns={"rlnAngleRot": np.zeros(N)})


def test_write_splits_an_optics_group_with_two_voltages(tmp_path):
    job, _ = _project(tmp_path)
    t = read_star_particles(_relion30(job))
    t.ctf[[1, 3], 3] = 200.0
    write_star(job / "o.star", t)
    b = read_star_particles(job / "o.star")
    np.testing.assert_array_equal(b.optics_group, [2, 1, 2, 1, 2])
    np.testing.assert_allclose(b.ctf, t.ctf)
    assert [(r["rlnOpticsGroupName"], r["rlnVoltage"]) for r in b.optics] == \
        [("opticsGroup1", "200.0"), ("opticsGroup2", "300.0")]


def test_datadir_and_parent_folders(tmp_path):
    job, movies = _project(tmp_path)
    star = _relion30(job)
    moved = tmp_path / "elsewhere"
    os.rename(movies, moved)
    with pytest.raises(InputError, match="mic1.mrcs' not found"):
        read_star_particles(star)
    t = read_star_particles(star, datadir=str(moved))
    assert all(os.path.dirname(p) == str(moved) for p in t.stacks)


def test_parser_blocks_pairs_quotes_comments(tmp_path):
    path = tmp_path / "x.star"
    path.write_text("# comment\ndata_\n_rlnKey 'a b' # note\n\ndata_table\nloop_\n_rlnA #1\n_rlnB\n"
                    "1 \"q 'x\"\n\n  # inside\n2 #c\n_rlnAfter 3\n")
    with pytest.raises(InputError, match="line 12: 1 values for 2 columns"):
        read_star(path)
    path.write_text("# comment\ndata_\n_rlnKey 'a b' # note\n\ndata_table\nloop_\n_rlnA #1\n_rlnB\n"
                    "1 \"q 'x\"\n\n  # inside\n2 y#c   \n_rlnAfter 3\n")
    b0, b1 = read_star(path)
    assert (b0.name, b0.pairs, b0.loop) == ("", {"rlnKey": "a b"}, None)
    assert b1.name == "table" and b1.loop == {"rlnA": ["1", "2"], "rlnB": ["q 'x", "y#c"]}
    assert b1.pairs == {"rlnAfter": "3"} and b1.nrows == 2


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("_rlnImageName #1", "_rlnImageNom #1"), "missing column rlnImageName"),
    (lambda s: s.replace("_rlnVoltage #4 \n", "").replace(" 300.0 2.7", " 2.7").replace(" 200.0 2.0", " 2.0"),
     "missing column rlnVoltage"),
    (lambda s: s.replace("mic2.mrcs", "mic9.mrcs"),
     r"image stack 'Extract/job012/Movies/mic9.mrcs' not found"),
    (lambda s: s.replace("opticsGroup2 2", "opticsGroup2 3"),
     r"rlnOpticsGroup 2 \(particle 2\) is not in data_optics"),
    (lambda s: s.replace(" 1.5 16 ", " 1.25 16 ", 1), "different pixel sizes"),
    (lambda s: s.replace(" 1.5 16 ", " 1.5 32 ", 1), "different image sizes"),
    (lambda s: s[:s.index("000001@")], "zero particles"),
    (lambda s: s.replace("000003@", "abc@"), r"'abc@.*' \(particle 2\): bad image number"),
    (lambda s: s.replace(" -5.0 ", " x5 ", 1), r"column rlnCtfBfactor: 'x5' \(row 1\) is not a number"),
    (lambda s: s.replace(" -5.0 ", " 'oops ", 1), "unterminated quoted value"),
    (lambda s: s.replace("data_optics", "loop_"), "before any data_ block"),
])
def test_malformed_star(tmp_path, edit, message):
    job, _ = _project(tmp_path)
    path = _relion31(job)
    path.write_text(edit(path.read_text()))
    with pytest.raises(InputError, match=message) as e:
        read_star_particles(path)
    assert str(e.value).startswith(str(path) + ": ") or "mic9" in str(e.value)


def test_not_text_and_unknown_suffix(tmp_path):
    (tmp_path / "b.star").write_bytes(b"\xff\xfe\x00data_")
    with pytest.raises(InputError, match="not UTF-8"):
        read_particles(tmp_path / "b.star")
    with pytest.raises(InputError, match="unknown particle file type '.txt'"):
        read_particles(tmp_path / "b.txt")
    with pytest.raises(InputError, match="file not found"):
        read_particles(tmp_path / "none.star")


@pytest.fixture(scope="module")
def stack8(tmp_path_factory):
    d = tmp_path_factory.mktemp("stack8")
    with mrcfile.new(str(d / "s.mrcs")) as m:
        m.set_data(np.zeros((8, 4, 4), np.float32))
        m.set_image_stack()
        m.voxel_size = 1.5
    return d


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_tables_survive_round_trip(stack8, data):
    n = data.draw(st.integers(1, 8))
    def arr(lo, hi, shape):
        size = int(np.prod(shape))
        values = data.draw(st.lists(st.floats(lo, hi, allow_nan=False), min_size=size, max_size=size))
        return np.array(values).reshape(shape)

    t = ParticleTable(stacks=[str(stack8 / "s.mrcs")], stack_id=np.zeros(n, int),
                      index=np.array(data.draw(st.lists(st.integers(0, 7), min_size=n, max_size=n))),
                      apix=data.draw(st.floats(0.1, 10)), box=4,
                      rotations=so3.euler_to_matrix(*arr(-180, 180, (3, n))), shifts_A=arr(-50, 50, (n, 2)),
                      ctf=np.column_stack([arr(0, 5e4, (n, 3)), np.full((n, 3), [300, 2.7, 0.1]),
                                           arr(0, 180, (n, 1)), arr(-100, 100, (n, 1))]),
                      extra={"rlnLogLikeliContribution": np.array([repr(x) for x in arr(-1e9, 1e9, (n,))])})
    write_star(stack8 / "t.star", t)
    b = read_star_particles(stack8 / "t.star")
    np.testing.assert_array_equal(b.index, t.index)
    assert b.apix == t.apix and b.box == 4
    np.testing.assert_allclose(b.rotations, t.rotations, atol=1e-9)
    np.testing.assert_array_equal(b.shifts_A, t.shifts_A)
    np.testing.assert_array_equal(b.ctf, t.ctf)
    np.testing.assert_array_equal(b.extra["rlnLogLikeliContribution"], t.extra["rlnLogLikeliContribution"])


LABELS = ["ImageName", "OpticsGroup", "AngleRot", "AngleTilt", "AnglePsi", "OriginX", "OriginXAngst",
          "DefocusU", "DefocusV", "Voltage", "SphericalAberration", "AmplitudeContrast", "ImageSize",
          "ImagePixelSize", "DetectorPixelSize", "Magnification", "MicrographName"]
VALUES = ["1@s.mrcs"] * 3 + ["9@s.mrcs", "0@s.mrcs", "1@t.mrcs", "s.mrcs", "1", "2", "2.5", "4", "16",
                             "300", "nan", "-1e400", "x", "'a b'", "@", "1e20"]


@st.composite
def star_like(draw):
    """STAR-shaped text: blocks of loops with plausible labels and values, plus random garbage lines."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        labels = draw(st.lists(st.sampled_from(LABELS), max_size=8, unique=True))
        if "ImageName" not in labels and len(labels) % 3:
            labels = ["ImageName"] + labels
        out += [draw(st.sampled_from(["data_", "data_optics", "data_particles", "data_general"])), "loop_"]
        out += ["_rln%s #%d" % (lab, i + 1) for i, lab in enumerate(labels)]
        for _ in range(draw(st.integers(0, 4))):
            k = draw(st.sampled_from([len(labels)] * 20 + [max(len(labels) - 1, 0), len(labels) + 1]))
            out.append(" ".join(draw(st.sampled_from(VALUES)) for _ in range(k)))
    for _ in range(draw(st.integers(0, 2))):
        out.insert(draw(st.integers(0, len(out))), draw(st.text(max_size=8)))
    return "\n".join(out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=star_like(), raw=st.binary(max_size=40))
def test_garbage_only_raises_input_error(stack8, text, raw):
    path = stack8 / "g.star"
    for write, content in ((path.write_text, text), (path.write_bytes, raw)):
        write(content)
        try:
            t = read_star_particles(path)
        except InputError as e:
            assert str(e).startswith(str(path) + ": ")
        else:
            assert len(t) > 0 and t.box > 0 and t.apix > 0
