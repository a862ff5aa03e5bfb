"""`check_particles`: a clean set passes with its summary; each broken set names the file and problem."""
import mrcfile
import numpy as np
import pytest

from flexplugin.engine.errors import InputError
from flexplugin.engine.io import write_cs, write_star
from flexplugin.engine.io.check import check_particles, format_report
from flexplugin.engine.io.table import ParticleTable
from flexplugin.engine.geometry import so3

BOX, APIX = 8, 2.0


def _stack(path, n, box=BOX, dtype=np.float32):
    data = np.random.default_rng(n).normal(size=(n, box, box)).astype(dtype)
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(data)
        m.set_image_stack()
        m.voxel_size = APIX
    return str(path)


def _dataset(tmp_path, n=30, fmt="star"):
    """Two stacks (20 + 10 images) and a particle file referencing all images."""
    stacks = [_stack(tmp_path / "a.mrcs", 20), _stack(tmp_path / "b.mrcs", 10)]
    rng = np.random.default_rng(0)
    sid = (np.arange(n) >= 20).astype(int)
    index = np.where(sid == 0, np.arange(n), np.arange(n) - 20)
    table = ParticleTable(stacks=stacks, stack_id=sid, index=index,
                          apix=APIX, box=BOX, rotations=so3.random_rotations(n, rng),
                          shifts_A=rng.normal(size=(n, 2)),
                          ctf=np.column_stack([np.full((n, 2), 15000.0), np.zeros(n),
                                               np.full((n, 3), [300, 2.7, 0.1]), np.zeros((n, 2))]),
                          optics_group=np.ones(n, int))
    path = tmp_path / ("particles." + fmt)
    (write_star if fmt == "star" else write_cs)(path, table)
    return path


@pytest.mark.parametrize("fmt", ["star", "cs"])
def test_clean_dataset(tmp_path, fmt):
    report = check_particles(_dataset(tmp_path, fmt=fmt))
    assert report["n"] == 30 and report["box"] == BOX and report["apix"] == pytest.approx(APIX)
    assert report["stacks"] == 2 and report["has_ctf"] and report["has_poses"]
    assert report["optics_groups"] == ([1] if fmt == "star" else [])
    text = format_report(report)
    assert "particles:     30" in text and "8 px at 2 Å/px (16.0 Å)" in text and "all finite" in text


def test_missing_stack(tmp_path):
    path = _dataset(tmp_path)
    (tmp_path / "b.mrcs").unlink()
    with pytest.raises(InputError, match=r"particles\.star: image stack 'b\.mrcs' not found"):
        check_particles(path)


def test_index_out_of_range(tmp_path):
    path = _dataset(tmp_path)
    _stack(tmp_path / "b.mrcs", 7)
    with pytest.raises(InputError, match=r"b\.mrcs: image 8 requested by particle 28 of .*particles\.star, "
                                         r"but the stack holds 7 images"):
        check_particles(path, scan_images=False)


def test_box_mismatch(tmp_path):
    path = _dataset(tmp_path)
    _stack(tmp_path / "b.mrcs", 10, box=10)
    with pytest.raises(InputError, match=r"b\.mrcs: image size 10 x 10 differs from the 8 px images of .*a\.mrcs"):
        check_particles(path)


def test_truncated_stack(tmp_path):
    path = _dataset(tmp_path)
    with open(tmp_path / "a.mrcs", "r+b") as f:
        f.truncate(2000)
    with pytest.raises(InputError, match=r"a\.mrcs: truncated"):
        check_particles(path)


def test_wrong_mode(tmp_path):
    path = _dataset(tmp_path)
    with open(tmp_path / "a.mrcs", "r+b") as f:
        f.seek(12)
        f.write(np.array([4], "<i4").tobytes())
    with pytest.raises(InputError, match=r"a\.mrcs: unsupported MRC mode 4"):
        check_particles(path)


def test_nan_image_names_particle_and_stack(tmp_path):
    path = _dataset(tmp_path)
    with mrcfile.open(str(tmp_path / "b.mrcs"), "r+") as m:
        m.data[3, 2, 2] = np.nan
        m.data[5, 0, 0] = np.inf
    check_particles(path, scan_images=False)          # only the scan reads the pixels
    with pytest.raises(InputError, match=r"b\.mrcs: image 4 \(particle 24 of .*particles\.star\) contains "
                                         r"NaN or inf"):
        check_particles(path, chunk=7)


def test_non_finite_metadata(tmp_path):
    path = _dataset(tmp_path)
    path.write_text(path.read_text().replace(" 15000.0 ", " nan ", 3))
    with pytest.raises(InputError, match=r"particles\.star: particle 1: CTF is not finite"):
        check_particles(path)


def test_zero_particles(tmp_path):
    path = _dataset(tmp_path)
    text = path.read_text()
    path.write_text(text[:text.index("000001@")])
    with pytest.raises(InputError, match=r"particles\.star: zero particles"):
        check_particles(path)


def test_stacks_rescaled_after_the_star_was_written(tmp_path, capsys):
    """The star says 8 px at 2 Å (rlnImageSize, rlnImagePixelSize); the stacks were rescaled to
    4 px (cryoDRGN's downsample): read at 4 px, 4 Å/px, with one note in check and train."""
    from cli_helpers import run_cli
    path = _dataset(tmp_path)
    _stack(tmp_path / "a.mrcs", 20, box=4)
    _stack(tmp_path / "b.mrcs", 10, box=4)
    report = check_particles(path)
    assert report["box"] == 4 and report["apix"] == pytest.approx(4.0)
    assert len(report["notes"]) == 1
    assert "rlnImageSize is 8 but the stacks hold 4 x 4 images" in report["notes"][0]
    assert "pixel size 2 -> 4 Å" in format_report(report)
    assert run_cli("train", "cryodrgn", "--particles", path, "--out", tmp_path / "run", "--epochs", 1,
                   "--zdim", 1, "--enc-dim", 8, "--dec-dim", 8, "--threads", 1) == 0
    assert "note: " in capsys.readouterr().out
