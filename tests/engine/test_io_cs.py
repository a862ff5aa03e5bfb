"""cryoSPARC .cs: hand-built files as cryoSPARC writes them, passthrough join, agreement with STAR."""
import os

import mrcfile
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexplugin.engine.errors import InputError
from flexplugin.engine.geometry import so3
from flexplugin.engine.io import read_particles
from flexplugin.engine.io.cs import read_cs_particles, write_cs
from flexplugin.engine.io.star import read_star_particles

N, BOX, APIX = 6, 16, 1.3
RNG = np.random.default_rng(3)
ROT, TILT, PSI = RNG.uniform(-180, 180, N), RNG.uniform(5, 175, N), RNG.uniform(-180, 180, N)
SHIFT_PX = RNG.uniform(-4, 4, (N, 2))
DF1 = RNG.uniform(9000, 20000, N)
DF2, DFANG = DF1 - 250, RNG.uniform(0, 180, N)
PHASE = RNG.uniform(0, 90, N)
IDX = np.array([0, 3, 1, 2, 0, 1])
STACK = ["J1/imported/a_particles.mrcs", "J1/imported/b_particles.mrcs"]
SID = np.array([0, 0, 1, 0, 1, 1])
UID = RNG.permutation(np.arange(10 ** 12, 10 ** 12 + 100))[:N].astype(np.uint64)


def _rotvec(m):
    """Axis-angle (log map) of a rotation matrix, written out here independently of so3."""
    angle = np.arccos(np.clip((np.trace(m) - 1) / 2, -1, 1))
    axis = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]]) / (2 * np.sin(angle))
    return axis * angle


TYPES = {"uid": "<u8", "blob/path": "S40", "blob/idx": "<u4", "blob/shape": ("<u4", (2,)),
         "ctf/type": "S1", "ctf/exp_group_id": "<u4", "alignments3D/shift": ("<f4", (2,)),
         "alignments3D/pose": ("<f4", (3,))}


def _cs_dtype(fields):
    """cryoSPARC's dtypes for these fields (float32 unless listed in TYPES)."""
    types = [TYPES.get(f, "<f4") for f in fields]
    return [(f,) + (t if isinstance(t, tuple) else (t,)) for f, t in zip(fields, types)]


BLOB = ["uid", "blob/path", "blob/idx", "blob/shape", "blob/psize_A", "blob/sign"]
CTF = ["ctf/type", "ctf/exp_group_id", "ctf/accel_kv", "ctf/cs_mm", "ctf/amp_contrast", "ctf/df1_A",
       "ctf/df2_A", "ctf/df_angle_rad", "ctf/phase_shift_rad", "ctf/scale", "ctf/bfactor"]
ALIGN = ["uid", "alignments3D/shift", "alignments3D/pose", "alignments3D/psize_A", "alignments3D/error"]


def _values(prefix=">"):
    poses = np.array([_rotvec(m.T) for m in so3.euler_to_matrix(ROT, TILT, PSI)])
    return {"uid": UID, "blob/path": [(prefix + STACK[s]).encode() for s in SID], "blob/idx": IDX,
            "blob/shape": np.full((N, 2), BOX), "blob/psize_A": APIX, "blob/sign": -1.0,
            "ctf/type": b"i", "ctf/exp_group_id": 1, "ctf/accel_kv": 300.0, "ctf/cs_mm": 2.7,
            "ctf/amp_contrast": 0.07, "ctf/df1_A": DF1, "ctf/df2_A": DF2,
            "ctf/df_angle_rad": np.deg2rad(DFANG), "ctf/phase_shift_rad": np.deg2rad(PHASE), "ctf/scale": 1.0, "ctf/bfactor": 0.0,
            "alignments3D/shift": SHIFT_PX, "alignments3D/pose": poses, "alignments3D/psize_A": APIX,
            "alignments3D/error": 1.0}


def _save(path, fields, rows=None, prefix=">"):
    values = _values(prefix)
    rows = np.arange(N) if rows is None else rows
    arr = np.zeros(len(rows), dtype=_cs_dtype(fields))
    for f in fields:
        v = values[f]
        arr[f] = np.asarray(v)[rows] if np.ndim(v) and len(v) == N else v
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:                      # np.save(name) would append .npy
        np.save(fh, arr)
    return path


def _project(tmp_path):
    """cryoSPARC project: stacks in J1/imported/, the particles of job J5 in J5/."""
    proj = tmp_path / "P1"
    (proj / "J1" / "imported").mkdir(parents=True)
    for name, n in zip(STACK, (4, 2)):
        with mrcfile.new(str(proj / name)) as m:
            m.set_data(np.zeros((n, BOX, BOX), np.float32))
            m.set_image_stack()
            m.voxel_size = APIX
    return proj


def _expect(t, proj):
    assert len(t) == N and t.box == BOX and t.apix == pytest.approx(APIX)
    assert [t.stacks[s] for s in t.stack_id] == [str(proj / STACK[s]) for s in SID]
    np.testing.assert_array_equal(t.index, IDX)
    np.testing.assert_allclose(t.rotations, so3.euler_to_matrix(ROT, TILT, PSI), atol=1e-5)
    np.testing.assert_allclose(t.shifts_A, SHIFT_PX * APIX, atol=1e-4)
    np.testing.assert_allclose(t.ctf, np.column_stack([DF1, DF2, DFANG, np.full((N, 3), [300, 2.7, 0.07]),
                                                       PHASE, np.zeros(N)]), rtol=1e-5, atol=1e-3)


def test_read_cs_with_project_relative_paths(tmp_path):
    proj = _project(tmp_path)
    t = read_particles(_save(proj / "J5" / "J5_particles.cs", BLOB + CTF + ALIGN[1:]))
    _expect(t, proj)
    assert t.source.endswith("J5_particles.cs") and t.optics_group is None


def test_passthrough_joined_on_uid(tmp_path):
    proj = _project(tmp_path)
    main = _save(proj / "J5" / "J5_particles.cs", ALIGN)
    order = np.array([4, 2, 0, 5, 1, 3])
    passthrough = _save(proj / "J5" / "J5_passthrough_particles.cs", BLOB + CTF, rows=order, prefix="")
    with pytest.raises(InputError, match=r"J5_particles\.cs.*missing field blob/path.*passthrough"):
        read_cs_particles(main)
    _expect(read_cs_particles(main, passthrough=passthrough), proj)
    short = _save(proj / "J5" / "short.cs", BLOB + CTF, rows=order[:4])
    with pytest.raises(InputError, match=r"short\.cs: uid \d+ of .*J5_particles\.cs is not in this "):
        read_cs_particles(main, passthrough=short)


def test_star_and_cs_give_the_same_table(tmp_path):
    proj = _project(tmp_path)
    cs = read_cs_particles(_save(proj / "J5" / "J5_particles.cs", BLOB + CTF + ALIGN[1:]))
    rows = "".join("%06d@%s %r %r %r %r %r %r %r %r %r 1\n" % (
        IDX[i] + 1, STACK[SID[i]], ROT[i], TILT[i], PSI[i], SHIFT_PX[i, 0] * APIX, SHIFT_PX[i, 1] * APIX,
        DF1[i], DF2[i], DFANG[i], PHASE[i]) for i in range(N))
    star = proj / "particles.star"
    star.write_text(
        "data_optics\nloop_\n_rlnOpticsGroup\n_rlnOpticsGroupName\n_rlnImagePixelSize\n_rlnImageSize\n"
        "_rlnVoltage\n_rlnSphericalAberration\n_rlnAmplitudeContrast\n1 g1 %r %d 300 2.7 0.07\n\n"
        "data_particles\nloop_\n_rlnImageName\n_rlnAngleRot\n_rlnAngleTilt\n_rlnAnglePsi\n_rlnOriginXAngst\n"
        "_rlnOriginYAngst\n_rlnDefocusU\n_rlnDefocusV\n_rlnDefocusAngle\n_rlnPhaseShift\n_rlnOpticsGroup\n%s"
        % (APIX, BOX, rows))
    st_ = read_star_particles(star)
    assert [cs.stacks[s] for s in cs.stack_id] == [st_.stacks[s] for s in st_.stack_id]
    np.testing.assert_array_equal(cs.index, st_.index)
    assert (cs.box, cs.apix) == (st_.box, pytest.approx(st_.apix))
    np.testing.assert_allclose(cs.rotations, st_.rotations, atol=1e-5)
    np.testing.assert_allclose(cs.shifts_A, st_.shifts_A, atol=1e-4)
    np.testing.assert_allclose(cs.ctf, st_.ctf, rtol=1e-5, atol=1e-3)


def test_write_cs_round_trip(tmp_path):
    proj = _project(tmp_path)
    a = read_cs_particles(_save(proj / "J5" / "J5_particles.cs", BLOB + CTF + ALIGN[1:]))
    out = proj / "out.cs"
    write_cs(out, a)
    assert sorted(os.listdir(proj)) == ["J1", "J5", "out.cs"]
    raw = np.load(out, allow_pickle=False)
    assert raw["blob/path"][0] == STACK[SID[0]].encode() and raw["blob/idx"].dtype == np.uint32
    np.testing.assert_array_equal(raw["uid"], np.arange(N))
    b = read_cs_particles(out)
    assert [a.stacks[s] for s in a.stack_id] == [b.stacks[s] for s in b.stack_id]
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_allclose(b.rotations, a.rotations, atol=1e-5)
    np.testing.assert_allclose(b.shifts_A, a.shifts_A, atol=1e-4)
    np.testing.assert_allclose(b.ctf, a.ctf, rtol=1e-5, atol=1e-3)


def test_datadir(tmp_path):
    proj = _project(tmp_path)
    cs = _save(tmp_path / "elsewhere" / "particles.cs", BLOB + CTF)
    with pytest.raises(InputError, match=r"particles\.cs: image stack 'J1/imported/a_particles\.mrcs' not"):
        read_cs_particles(cs)
    t = read_cs_particles(cs, datadir=str(proj))
    assert t.rotations is None and t.has_ctf


@pytest.mark.parametrize("drop, message", [
    ("blob/idx", "missing field blob/idx"), ("blob/psize_A", "missing field blob/psize_A"),
    ("ctf/cs_mm", "missing field ctf/cs_mm")])
def test_missing_fields(tmp_path, drop, message):
    proj = _project(tmp_path)
    path = _save(proj / "J5" / "p.cs", [f for f in BLOB + CTF if f != drop])
    with pytest.raises(InputError, match=message) as e:
        read_cs_particles(path)
    assert str(e.value).startswith(str(path))


def test_bad_files(tmp_path):
    proj = _project(tmp_path)
    (tmp_path / "x.cs").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"x\.cs: not a cryoSPARC \.cs file"):
        read_cs_particles(tmp_path / "x.cs")
    with open(tmp_path / "plain.cs", "wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(InputError, match="expected a 1-D array with named fields"):
        read_cs_particles(tmp_path / "plain.cs")
    with pytest.raises(InputError, match="zero particles"):
        read_cs_particles(_save(proj / "J5" / "empty.cs", BLOB, rows=np.arange(0)))
    arr = np.load(_save(proj / "J5" / "ns.cs", BLOB))
    arr["blob/shape"][2] = (16, 20)
    with open(proj / "J5" / "ns.cs", "wb") as fh:
        np.save(fh, arr)
    with pytest.raises(InputError, match="images are not square"):
        read_cs_particles(proj / "J5" / "ns.cs")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("cs_prop")


ALL = BLOB + CTF + ALIGN[1:]
REQUIRED = ["blob/path", "blob/idx", "blob/shape", "blob/psize_A"]


@settings(max_examples=60, deadline=None)
@given(keep=st.lists(st.sampled_from(ALL), unique=True), n=st.integers(0, 4), seed=st.integers(0, 2 ** 16))
def test_random_arrays_missing_fields(folder, keep, n, seed):
    dropped = [f for f in REQUIRED if f not in keep]
    rng = np.random.default_rng(seed)
    arr = np.zeros(n, dtype=_cs_dtype(keep)) if keep else np.zeros(n, dtype=[("x", "<f4")])
    for f in arr.dtype.names:
        if arr[f].dtype.kind == "f":
            arr[f] = rng.normal(size=arr[f].shape)
    with open(folder / "r.cs", "wb") as fh:
        np.save(fh, arr)
    if dropped:
        with pytest.raises(InputError, match="missing field"):
            read_cs_particles(folder / "r.cs")
    else:
        with pytest.raises(InputError):        # random content: no stack of that name exists
            read_cs_particles(folder / "r.cs")


NAMES = REQUIRED + ["ctf/df1_A", "alignments3D/pose", "uid"]
DTYPES = ["<f4", "<i8", "S3", "<U2", "?", ("<f4", (2,)), ("<u4", (3,))]


@settings(max_examples=60, deadline=None)
@given(dtypes=st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(DTYPES)), unique_by=lambda t: t[0]),
       n=st.integers(0, 3))
def test_random_field_types_only_raise_input_error(folder, dtypes, n):
    fields = [(name,) + ((t,) if isinstance(t, str) else t) for name, t in dtypes]
    arr = np.zeros(n, dtype=fields or [("x", "<f4")])
    with open(folder / "t.cs", "wb") as fh:
        np.save(fh, arr)
    with pytest.raises(InputError):
        read_cs_particles(folder / "t.cs", passthrough=folder / "t.cs")
