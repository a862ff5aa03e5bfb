"""Simulate -> reconstruct: poses, shifts and CTF agree end to end (FSC with the ground truth)."""
import numpy as np
import pytest

from cli_helpers import run_cli
from flexplugin.engine.analysis.fsc import fsc, resolution_at
from flexplugin.engine.io import read_mrc, read_particles, ImageSource
from flexplugin.engine.reconstruct import reconstruct

# D=32, 1500 particles, SNR 0.1, 3 Å/px (Nyquist 6 Å). Measured: 0.5-crossing with the ground
# truth at ~8 Å and a real-space correlation of ~0.99; a broken pose, shift or CTF convention
# gives a correlation below 0.85 (a blurred blob still correlates at low resolution).
GT_FSC05_MAX_A = 10.0
GT_CORR_MIN = 0.95
BROKEN_CORR_MAX = 0.9


@pytest.fixture(scope="module")
def reconstruction(homogeneous_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "map.mrc"
    assert run_cli("reconstruct", "--particles", homogeneous_set / "particles.star", "--out", out) == 0
    return out


def _gt_resolution(path, gt_path, threshold=0.5):
    vol, apix = read_mrc(path)
    gt, _ = read_mrc(gt_path)
    f, c = fsc(vol, gt)
    return resolution_at(f, c, threshold, apix)


def test_reconstruction_recovers_ground_truth(homogeneous_set, reconstruction):
    res = _gt_resolution(reconstruction, homogeneous_set / "gt_volumes" / "state_00.mrc")
    vol, apix = read_mrc(reconstruction)
    gt, _ = read_mrc(homogeneous_set / "gt_volumes" / "state_00.mrc")
    corr = np.corrcoef(vol.ravel(), gt.ravel())[0, 1]
    print("FSC=0.5 with ground truth: %.2f Å, correlation %.4f" % (res, corr))
    assert res <= GT_FSC05_MAX_A and corr > GT_CORR_MIN
    assert vol.shape == (32, 32, 32) and abs(apix - 3.0) < 1e-5
    for name in ("map_half1.mrc", "map_half2.mrc", "map_fsc.txt"):
        assert (reconstruction.parent / name).exists()
    curve = np.loadtxt(reconstruction.parent / "map_fsc.txt")
    assert curve.shape[1] == 2 and curve[1, 1] > 0.9


def test_cs_gives_the_same_map(homogeneous_set, reconstruction, tmp_path):
    out = tmp_path / "map.mrc"
    assert run_cli("reconstruct", "--particles", homogeneous_set / "particles.cs", "--out", out) == 0
    a, _ = read_mrc(reconstruction)
    b, _ = read_mrc(out)
    assert np.abs(a - b).max() < 1e-3 * np.abs(a).max()


@pytest.mark.parametrize("damage", ["transpose", "shift_sign", "ctf_sign"])
def test_wrong_conventions_fail(homogeneous_set, damage):
    """Negative controls: each plausible convention slip visibly breaks the reconstruction."""
    table = read_particles(homogeneous_set / "particles.star").subset(np.arange(1000))
    if damage == "transpose":
        table.rotations = np.swapaxes(table.rotations, 1, 2)
    elif damage == "shift_sign":
        table.shifts_A = -table.shifts_A
    r = reconstruct(table, ImageSource(table), invert=(damage == "ctf_sign"), log=lambda *_: None)
    gt, _ = read_mrc(homogeneous_set / "gt_volumes" / "state_00.mrc")
    f, c = fsc(r["map"], gt)
    corr = np.corrcoef(r["map"].ravel(), gt.ravel())[0, 1]
    print("%s: FSC=0.5 at %.2f Å, correlation %.3f" % (damage, resolution_at(f, c, 0.5, r["apix"]), corr))
    assert corr < BROKEN_CORR_MAX


def test_downsampled_reconstruction_keeps_pixel_size(homogeneous_set, tmp_path):
    out = tmp_path / "small.mrc"
    assert run_cli("reconstruct", "--particles", homogeneous_set / "particles.star", "--out", out,
                   "--box", 16, "--max-particles", 500) == 0
    vol, apix = read_mrc(out)
    assert vol.shape == (16, 16, 16) and abs(apix - 6.0) < 1e-5
