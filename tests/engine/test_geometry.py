"""Rotations, transforms and projections against known answers."""
import numpy as np
import pytest
import torch

from flexplugin.engine.geometry import so3
from flexplugin.engine.geometry import fourier as F
from flexplugin.engine.geometry.projection import project_fourier, project_real
from flexplugin.engine.simulate import render_volume, project_atoms, builtin_object


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(7)


def test_representations_round_trip(rng):
    r = so3.random_rotations(500, rng)
    assert np.allclose(r @ np.swapaxes(r, 1, 2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(r), 1)
    assert np.allclose(so3.euler_to_matrix(*so3.matrix_to_euler(r)), r, atol=1e-10)
    assert np.allclose(so3.quaternion_to_matrix(so3.matrix_to_quaternion(r)), r, atol=1e-10)
    assert np.allclose(so3.axis_angle_to_matrix(so3.matrix_to_axis_angle(r)), r, atol=1e-10)
    assert np.allclose(so3.sixd_to_matrix(so3.matrix_to_sixd(r)), r, atol=1e-10)
    six = torch.as_tensor(so3.matrix_to_sixd(r) + 0.01 * rng.normal(size=(500, 6)))
    assert np.allclose(so3.sixd_to_matrix_torch(six).numpy(), so3.sixd_to_matrix(six.numpy()), atol=1e-10)
    # gimbal-lock poses keep the matrix
    for tilt in (0.0, 180.0):
        m = so3.euler_to_matrix(25.0, tilt, -70.0)
        assert np.allclose(so3.euler_to_matrix(*so3.matrix_to_euler(m)), m, atol=1e-12)


def test_euler_elementary_rotations():
    """RELION's matrix for (rot, 0, 0) is a passive rotation about z: x' = cos*x + sin*y."""
    m = so3.euler_to_matrix(30.0, 0.0, 0.0)
    c, s = np.cos(np.deg2rad(30)), np.sin(np.deg2rad(30))
    assert np.allclose(m, [[c, s, 0], [-s, c, 0], [0, 0, 1]])
    # tilt 90 brings the z axis onto -x of the image (A @ z = (-1, 0, 0))
    assert np.allclose(so3.euler_to_matrix(0.0, 90.0, 0.0) @ [0, 0, 1], [-1, 0, 0], atol=1e-12)


def test_uniform_rotations_are_uniform(rng):
    """Uniform SO(3): the viewing direction's z is uniform in [-1, 1] and the angle histogram of a
    random rotation follows (1 - cos t) / pi."""
    r = so3.random_rotations(20000, rng)
    z = r[:, 2, 2]
    assert abs(z.mean()) < 0.02 and abs(np.mean(z ** 2) - 1 / 3) < 0.01
    t = np.deg2rad(so3.rotation_angle_deg(np.eye(3), r))
    assert abs(t.mean() - (np.pi / 2 + 2 / np.pi)) < 0.02


def test_cryosparc_pose_is_transposed_axis_angle(rng):
    r = so3.random_rotations(50, rng)
    pose = so3.matrix_to_cryosparc_pose(r)
    assert np.allclose(so3.axis_angle_to_matrix(pose), np.swapaxes(r, 1, 2), atol=1e-10)
    assert np.allclose(so3.cryosparc_pose_to_matrix(pose), r, atol=1e-10)


def test_hartley_and_fourier_transforms():
    x = torch.randn(3, 16, 16, dtype=torch.float64)
    assert torch.allclose(F.iht2_center(F.ht2_center(x)), x, atol=1e-10)
    assert torch.allclose(F.ifft2_center(F.fft2_center(x)).real, x, atol=1e-10)
    assert torch.allclose(F.hartley_to_fourier(F.ht2_center(x)), F.fft2_center(x), atol=1e-9)
    v = torch.randn(8, 8, 8, dtype=torch.float64)
    assert torch.allclose(F.iht3_center(F.ht3_center(v)), v, atol=1e-10)
    # the zero frequency sits at index D//2 and holds the sum
    assert torch.allclose(F.fft2_center(x)[:, 8, 8].real, x.sum(dim=(-2, -1)))


def test_phase_shift_moves_content():
    img = torch.zeros(1, 32, 32, dtype=torch.float64)
    img[0, 16, 16] = 1.0
    out = F.shift_images(img, torch.tensor([[3.0, -5.0]], dtype=torch.float64))
    assert torch.argmax(out[0]).item() == (16 - 5) * 32 + (16 + 3)
    # a fractional shift moves the centre of mass by exactly that amount
    g = torch.exp(-((torch.arange(32.) - 16)[None, :] ** 2 + (torch.arange(32.) - 16)[:, None] ** 2) / 8)
    out = F.shift_images(g[None].double(), torch.tensor([[1.25, 0.5]], dtype=torch.float64))[0]
    ys, xs = torch.meshgrid(torch.arange(32.), torch.arange(32.), indexing="ij")
    com = ((out * xs.double()).sum() / out.sum(), (out * ys.double()).sum() / out.sum())
    assert abs(com[0] - 17.25) < 1e-6 and abs(com[1] - 16.5) < 1e-6


def test_fourier_crop_downsamples_band_limited_images():
    g = torch.exp(-((torch.arange(64.) - 32)[None, :] ** 2 + (torch.arange(64.) - 32)[:, None] ** 2) / 50)
    small = F.fourier_crop(g[None].double(), 32)[0]
    ref = torch.exp(-((torch.arange(32.) - 16)[None, :] ** 2 + (torch.arange(32.) - 16)[:, None] ** 2) / 12.5)
    assert torch.allclose(small, ref.double(), atol=1e-3)
    assert abs(float(small.sum()) * 4 - float(g.sum())) < 1e-3 * float(g.sum())


def test_soft_window():
    w = F.soft_circular_window(64)
    assert w[32, 32] == 1 and w[0, 0] == 0 and w[32, 0] < 0.5 and 0 < w[32, 4] < 1


def test_fourier_and_real_space_projections_agree(rng):
    """The central-slice projection and the rotate-and-splat projection of one volume (D=64)."""
    d = 64
    coords, weights, *_ = builtin_object()
    vol = render_volume(coords * d, weights, 2.0, d)
    rot = torch.as_tensor(so3.random_rotations(6, rng), dtype=torch.float32)
    a = project_fourier(vol, rot)
    b = project_real(vol, rot)
    for i in range(len(rot)):
        assert np.corrcoef(a[i].ravel(), b[i].ravel())[0, 1] > 0.99
    # and both match the exact projection of the Gaussians (an independent image formation)
    exact = project_atoms(np.repeat(coords[None] * d, 6, 0), weights, 2.0, rot.double().numpy(),
                          np.zeros((6, 2)), d)
    for i in range(len(rot)):
        assert np.corrcoef(a[i].ravel(), exact[i].ravel())[0, 1] > 0.99
        assert np.corrcoef(b[i].ravel(), exact[i].ravel())[0, 1] > 0.99
    # a transposed rotation gives a different image: the test can tell conventions apart
    wrong = project_real(vol, rot.transpose(1, 2))
    assert min(np.corrcoef(wrong[i].ravel(), exact[i].ravel())[0, 1] for i in range(6)) < 0.9


def test_projection_of_a_point_lands_at_A_r():
    d = 32
    vol = torch.zeros(d, d, d)
    vol[16 + 2, 16 - 3, 16 + 5] = 1.0              # r = (x, y, z) = (5, -3, 2)
    a = so3.euler_to_matrix(40.0, 70.0, -20.0)
    img = project_real(vol, torch.as_tensor(a[None], dtype=torch.float32))[0]
    ys, xs = torch.meshgrid(torch.arange(d.__float__()), torch.arange(float(d)), indexing="ij")
    com = ((img * xs).sum() / img.sum() - 16, (img * ys).sum() / img.sum() - 16)
    expect = a @ [5.0, -3.0, 2.0]
    assert abs(com[0] - expect[0]) < 1e-4 and abs(com[1] - expect[1]) < 1e-4
