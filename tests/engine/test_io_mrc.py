"""MRC volumes/stacks: read/write, lazy ImageSource over many stacks, damaged files -> InputError."""
import os
import pickle

import mrcfile
import numpy as np
import pytest

from flexplugin.engine.errors import InputError
from flexplugin.engine.io.mrc import ImageSource, new_stack, read_mrc, stack_info, write_mrc
from flexplugin.engine.io.table import ParticleTable


def _stack(path, data, apix=1.5):
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(data)
        m.set_image_stack()
        m.voxel_size = apix
    return str(path)


def _table(stacks, stack_id, index, box, source="particles.star"):
    return ParticleTable(stacks=[str(s) for s in stacks], stack_id=np.asarray(stack_id),
                         index=np.asarray(index), apix=1.5, box=box, source=source)


def test_error_message_names_file_and_problem():
    e = InputError("/data/x.mrcs", "truncated")
    assert str(e) == "/data/x.mrcs: truncated" and e.path == "/data/x.mrcs" and e.problem == "truncated"
    assert str(pickle.loads(pickle.dumps(e))) == str(e)


def test_volume_round_trip_keeps_voxel_size_and_origin(tmp_path):
    vol = np.random.default_rng(0).normal(size=(8, 10, 12)).astype(np.float64)
    path = tmp_path / "vol.mrc"
    write_mrc(path, vol, 2.5, origin_centered=True)
    out, apix = read_mrc(path)
    assert out.dtype == np.float32 and out.shape == (8, 10, 12)
    np.testing.assert_allclose(out, vol, rtol=1e-6)
    assert apix == pytest.approx(2.5)
    with mrcfile.open(str(path)) as m:
        assert (float(m.header.origin.x), float(m.header.origin.y), float(m.header.origin.z)) == \
            pytest.approx((-6 * 2.5, -5 * 2.5, -4 * 2.5))
        assert m.voxel_size.x == pytest.approx(2.5)
    assert sorted(os.listdir(tmp_path)) == ["vol.mrc"]          # no temporary file left behind


def test_write_mrcs_image_stack_and_single_image(tmp_path):
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    write_mrc(tmp_path / "one.mrcs", img, 1.2)
    assert stack_info(tmp_path / "one.mrcs") == (1, 4, 4, pytest.approx(1.2))
    out, _ = read_mrc(tmp_path / "one.mrcs")
    np.testing.assert_array_equal(out, img)                     # one section -> an image
    stack = np.stack([img, -img, 2 * img]).astype(np.int16)
    write_mrc(tmp_path / "s.mrcs", stack, 1.2)
    with mrcfile.open(str(tmp_path / "s.mrcs")) as m:
        assert m.is_image_stack() and m.data.dtype == np.int16
    assert stack_info(tmp_path / "s.mrcs")[:3] == (3, 4, 4)


def test_new_stack_writes_in_chunks(tmp_path):
    path = tmp_path / "big.mrcs"
    with new_stack(path, 5, 6, 1.7) as data:
        data[:3] = 1.0
        data[3:] = 2.0
    out, apix = read_mrc(path)
    assert out.shape == (5, 6, 6) and apix == pytest.approx(1.7)
    assert out[:3].max() == 1.0 and out[3:].min() == 2.0


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float32, np.uint16, np.float16])
def test_image_source_reads_every_mode(tmp_path, dtype):
    data = (np.random.default_rng(1).uniform(0, 100, (6, 8, 8))).astype(dtype)
    path = _stack(tmp_path / "s.mrcs", data)
    src = ImageSource(_table([path], np.zeros(6, int), np.arange(6), 8))
    assert len(src) == 6
    out = src.get([4, 0, 4])
    assert out.dtype == np.float32 and out.shape == (3, 8, 8)
    np.testing.assert_array_equal(out, data[[4, 0, 4]].astype(np.float32))


def test_image_source_many_stacks_lru_and_pickle(tmp_path):
    rng = np.random.default_rng(2)
    stacks = [rng.normal(size=(n, 6, 6)).astype(np.float32) for n in (3, 4, 2)]
    paths = [_stack(tmp_path / ("s%d.mrcs" % i), s) for i, s in enumerate(stacks)]
    sid = np.array([2, 0, 1, 1, 0, 2, 1])
    idx = np.array([1, 2, 3, 0, 0, 0, 2])
    src = ImageSource(_table(paths, sid, idx, 6), max_open=1)
    expect = np.stack([stacks[s][i] for s, i in zip(sid, idx)])
    np.testing.assert_array_equal(src.get(np.arange(7)), expect)
    np.testing.assert_array_equal(src.get([6, 0]), expect[[6, 0]])
    assert len(src._open) == 1
    clone = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(clone.get([3]), expect[[3]])


def test_big_endian_stack(tmp_path):
    data = np.arange(2 * 4 * 4, dtype=">f4").reshape(2, 4, 4)
    path = _stack(tmp_path / "be.mrcs", data)
    src = ImageSource(_table([path], [0, 0], [1, 0], 4))
    np.testing.assert_array_equal(src.get([0, 1]), data[[1, 0]].astype(np.float32))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.mrcs: file not found"):
        stack_info(tmp_path / "nope.mrcs")


def test_truncated_stack(tmp_path):
    path = _stack(tmp_path / "t.mrcs", np.zeros((10, 8, 8), np.float32))
    with open(path, "r+b") as f:
        f.truncate(1024 + 5 * 8 * 8 * 4 + 7)
    with pytest.raises(InputError, match=r"t\.mrcs: truncated: the header announces 10 images"):
        ImageSource(_table([path], [0], [0], 8)).get([0])
    with pytest.raises(InputError, match="truncated"):
        read_mrc(path)


def test_not_an_mrc_file(tmp_path):
    (tmp_path / "x.mrc").write_bytes(b"hello")
    with pytest.raises(InputError, match=r"x\.mrc: not an MRC file"):
        read_mrc(tmp_path / "x.mrc")
    (tmp_path / "z.mrc").write_bytes(b"\0" * 1024)
    with pytest.raises(InputError, match=r"z\.mrc: not an MRC file \(dimensions 0 x 0 x 0"):
        read_mrc(tmp_path / "z.mrc")


def test_wrong_mode(tmp_path):
    path = _stack(tmp_path / "m.mrcs", np.zeros((2, 4, 4), np.float32))
    with open(path, "r+b") as f:
        f.seek(12)
        f.write(np.array([3], "<i4").tobytes())          # mode 3: complex int16
    with pytest.raises(InputError, match=r"m\.mrcs: unsupported MRC mode 3"):
        ImageSource(_table([path], [0], [0], 4)).get([0])


def test_index_out_of_range(tmp_path):
    path = _stack(tmp_path / "s.mrcs", np.zeros((3, 4, 4), np.float32))
    src = ImageSource(_table([path], [0, 0], [0, 3], 4))
    with pytest.raises(InputError, match=r"s\.mrcs: image 4 requested .* holds 3 images"):
        src.get([1])
    with pytest.raises(InputError, match=r"particles\.star: particle index 2 out of range \(2 particles\)"):
        src.get([2])


def test_box_mismatch_and_non_square(tmp_path):
    a = _stack(tmp_path / "a.mrcs", np.zeros((2, 4, 4), np.float32))
    b = _stack(tmp_path / "b.mrcs", np.zeros((2, 6, 6), np.float32))
    c = _stack(tmp_path / "c.mrcs", np.zeros((2, 4, 6), np.float32))
    src = ImageSource(_table([a, b, c], [0, 1, 2], [0, 0, 0], 4))
    src.get([0])
    with pytest.raises(InputError, match=r"b\.mrcs: image size 6 x 6 differs from the 4 px images of .*a\.mrcs"):
        src.get([1])
    with pytest.raises(InputError, match=r"c\.mrcs: images are not square \(6 x 4 pixels\)"):
        src.get([2])
