"""Our rotation and shift conventions against RELION's as implemented by scipion-em-relion / pwem."""
import numpy as np
from pwem.convert import transformations as tfs
from relion.convert.convert_deprecated import matrixFromGeometry

from flexplugin.engine.geometry import so3


def test_euler_matrix_matches_relion_plugin():
    rng = np.random.default_rng(11)
    for rot, tilt, psi in rng.uniform([-180, 0, -180], [180, 180, 180], size=(200, 3)):
        ours = so3.euler_to_matrix(rot, tilt, psi)
        theirs = tfs.euler_matrix(*(-np.deg2rad([rot, tilt, psi])), axes="szyz")[:3, :3]
        assert np.allclose(ours, theirs, atol=1e-12)
        back = -np.rad2deg(tfs.euler_from_matrix(np.pad(ours, (0, 1)) + np.diag([0, 0, 0, 1]), axes="szyz"))
        assert np.allclose(so3.euler_to_matrix(*back), ours, atol=1e-10)


def test_projection_transform_matches_relion_plugin():
    """Scipion's 4x4 projection matrix built by the relion plugin from a star row holds our
    rotation and RELION's origin (in pixels) with the sign its reader uses."""
    angles = np.array([33.0, 71.0, -140.0])
    shifts = np.array([2.5, -1.25, 0.0])       # rlnOriginX/Y in pixels
    m = matrixFromGeometry(shifts, angles, True)
    inv = np.linalg.inv(m)
    assert np.allclose(inv[:3, :3], so3.euler_to_matrix(*angles), atol=1e-12)
    assert np.allclose(-inv[:3, 3], shifts, atol=1e-12)
