"""Soft masks (engine/masks.py) and the ``flexplugin mask`` command."""
import numpy as np
import pytest

from cli_helpers import run_cli
from flexplugin.engine.io import read_mrc, write_mrc
from flexplugin.engine.masks import sphere_mask, threshold_mask


def test_sphere_mask_geometry():
    box, apix = 32, 2.0
    m = sphere_mask(box, apix, center_A=(8.0, -4.0, 6.0), radius_A=10.0, soft_A=4.0)
    assert m.shape == (box,) * 3 and m.dtype == np.float32
    assert m.min() >= 0 and m.max() <= 1
    # Centre (x, y, z) = (8, -4, 6) Å -> index (z, y, x) = (16 + 3, 16 - 2, 16 + 4).
    assert m[19, 14, 20] == 1
    # 10 Å along x from the centre: the radius (1); 12 Å: half-way through the edge (0.5);
    # 14 Å and beyond: 0.
    assert m[19, 14, 25] == pytest.approx(1.0)
    assert m[19, 14, 26] == pytest.approx(0.5, abs=1e-6)
    assert m[19, 14, 27] == 0 and m[19, 14, 31] == 0
    # Volume of the hard core close to 4/3 pi r^3.
    hard = sphere_mask(64, 1.0, radius_A=12.0)
    assert set(np.unique(hard)) == {0.0, 1.0}
    assert abs(hard.sum() / (4 / 3 * np.pi * 12 ** 3) - 1) < 0.03
    # Axis order: a centre offset in x moves the mask along the last array axis.
    off = sphere_mask(32, 1.0, center_A=(5, 0, 0), radius_A=3)
    assert off[16, 16, 21] == 1 and off[21, 16, 16] == 0 and off[16, 21, 16] == 0


def test_threshold_mask_dilates_and_softens():
    vol = np.zeros((32, 32, 32), np.float32)
    vol[16, 16, 16] = 5.0
    apix = 2.0
    m = threshold_mask(vol, 1.0, dilate_A=4.0, soft_A=4.0, apix=apix)
    assert m[16, 16, 16] == 1
    assert m[16, 16, 18] == 1                      # 4 Å: inside the dilation
    assert m[16, 16, 19] == pytest.approx(0.5)     # 6 Å: half-way through the 4 Å edge
    assert m[16, 16, 20] == 0                      # 8 Å: outside
    # No dilation, no edge: exactly the thresholded voxels.
    vol2 = np.random.default_rng(0).normal(size=(16, 16, 16)).astype(np.float32)
    assert np.array_equal(threshold_mask(vol2, 0.5, apix=1.0), (vol2 > 0.5).astype(np.float32))
    with pytest.raises(ValueError, match="threshold"):
        threshold_mask(vol, 10.0, apix=1.0)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="--radius"):
        sphere_mask(32, 1.0, radius_A=0)
    with pytest.raises(ValueError, match="--apix"):
        sphere_mask(32, 0.0, radius_A=5)
    with pytest.raises(ValueError, match="--center"):
        sphere_mask(32, 1.0, center_A=(1, 2), radius_A=5)


def test_mask_command(tmp_path, capsys):
    out = tmp_path / "sphere.mrc"
    assert run_cli("mask", "--out", out, "--sphere", "--box", 24, "--apix", 2.5,
                   "--center=-5,0,2.5", "--radius", 10, "--soft", 5) == 0
    m, apix = read_mrc(out)
    assert m.shape == (24,) * 3 and apix == pytest.approx(2.5)
    assert np.allclose(m, sphere_mask(24, 2.5, (-5, 0, 2.5), 10, 5))
    assert m[13, 12, 10] == 1

    vol = np.zeros((24, 24, 24), np.float32)
    vol[10:14, 10:14, 10:14] = 1.0
    write_mrc(tmp_path / "map.mrc", vol, 3.0)
    out2 = tmp_path / "thr.mrc"
    assert run_cli("mask", "--out", out2, "--map", tmp_path / "map.mrc", "--threshold", 0.5,
                   "--dilate", 3, "--soft", 6) == 0
    m2, apix2 = read_mrc(out2)
    assert apix2 == pytest.approx(3.0)
    assert np.allclose(m2, threshold_mask(vol, 0.5, 3, 6, 3.0))
    assert m2[12, 12, 12] == 1 and m2[12, 12, 14] == 1 and m2[12, 12, 23] == 0

    # Bad input: one readable error line and exit status 2.
    capsys.readouterr()
    assert run_cli("mask", "--out", out, "--sphere", "--box", 24, "--apix", 2.5) == 2
    assert "--radius" in capsys.readouterr().err
    assert run_cli("mask", "--out", out, "--map", tmp_path / "map.mrc", "--threshold", 9) == 2
    err = capsys.readouterr().err
    assert "map.mrc" in err and "threshold" in err
    assert run_cli("mask", "--out", out, "--sphere", "--box", 24, "--apix", 2.5, "--radius", 5,
                   "--center", "1,2") == 2
    assert "--center" in capsys.readouterr().err
    assert run_cli("mask", "--out", out, "--box", 24) == 2
    assert run_cli("mask", "--out", out, "--map", tmp_path / "missing.mrc", "--threshold", 1) == 2
