"""cryoDRGN science on small simulated sets (D=32, 1500 particles, CTF, shifts, known poses):
a homogeneous map, a 1D motion and three discrete volumes. A small architecture, lr 1e-3 and
batch 16 (the paper's 1e-4 / 8 needs more epochs than a test can afford), one CPU thread."""
import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from cli_helpers import simulate_three_volumes, train_z
from flexplugin.engine.analysis.fsc import fsc, resolution_at
from flexplugin.engine.analysis.poses import pc1
from flexplugin.engine.io import read_mrc

SMALL = ["--enc-dim", 64, "--enc-layers", 1, "--dec-dim", 64, "--dec-layers", 2,
         "--lr", 1e-3, "--batch-size", 16, "--threads", 1, "--log-every", 0]

# Thresholds (measured values in the comments; a broken model fails each one).
# Homogeneous, SNR 0.1, 3 epochs: correlation with the ground truth 0.965 (FSC=0.5 at 7.9 Å,
# Nyquist 6 Å); the same map against the axis-transposed ground truth (what a transposed
# convention would give) correlates 0.32.
HOMOGENEOUS_CORR_MIN = 0.9
# 1D motion (5 states of the built-in hinge, SNR 1), zdim 1, 20 epochs: |Spearman| 0.945; the
# same run with a decoder that ignores z (the encoder then only feels the KL term) gave 0.02.
MOTION_SPEARMAN_MIN = 0.85
# Three volumes (whole object, arm removed, arm swung by 60 degrees), SNR 1, zdim 2, 15 epochs:
# ARI of k-means(3) 0.98; z carrying no information gives ~0.
DISCRETE_ARI_MIN = 0.85


def _train(data, out, epochs, *extra):
    return train_z("cryodrgn", data, out, epochs, *SMALL, *extra)


def test_homogeneous_map_matches_ground_truth(homogeneous_set, tmp_path):
    _train(homogeneous_set, tmp_path, 3, "--zdim", 0, "--dec-dim", 128)
    vol, apix = read_mrc(tmp_path / "consensus.mrc")
    gt, _ = read_mrc(homogeneous_set / "gt_volumes" / "state_00.mrc")
    corr = np.corrcoef(vol.ravel(), gt.ravel())[0, 1]
    corr_t = np.corrcoef(vol.ravel(), gt.transpose(2, 1, 0).ravel())[0, 1]
    f, c = fsc(vol, gt)
    print("homogeneous: correlation %.3f (transposed GT %.3f), FSC 0.5 at %.1f Å"
          % (corr, corr_t, resolution_at(f, c, 0.5, apix)))
    assert vol.shape == (32, 32, 32) and abs(apix - 3.0) < 1e-5
    assert corr > HOMOGENEOUS_CORR_MIN and corr_t < HOMOGENEOUS_CORR_MIN
    # Same scale as the data: the decoded map and the ground truth have similar amplitudes.
    assert 0.5 < vol.std() / gt.std() < 2


def test_motion_latent_orders_states(motion_set, tmp_path):
    z = _train(motion_set, tmp_path, 20, "--zdim", 1)
    r = abs(spearmanr(pc1(z), np.load(motion_set / "z_true.npy")).correlation)
    print("1D motion: |Spearman(PC1 z, state)| = %.3f" % r)
    assert r > MOTION_SPEARMAN_MIN


@pytest.fixture(scope="module")
def discrete_set(tmp_path_factory):
    return simulate_three_volumes(tmp_path_factory.mktemp("discrete"), 1500)


def test_discrete_volumes_cluster(discrete_set, tmp_path):
    z = _train(discrete_set, tmp_path, 15, "--zdim", 2)
    labels = np.load(discrete_set / "labels.npy")
    pred = KMeans(3, n_init=10, random_state=0).fit_predict(z)
    ari = adjusted_rand_score(labels, pred)
    print("discrete: ARI of k-means(3) on z = %.3f" % ari)
    assert ari > DISCRETE_ARI_MIN


def test_fused_residual_mlp_matches_plain_autograd():
    """The fused hidden stack (ResidualMLP) has the maths and gradients of relu(layer(h) + h)."""
    import torch
    from flexplugin.engine.methods.cryodrgn import ResidualMLP
    torch.manual_seed(0)
    m = ResidualMLP(10, 16, 3, 2, n_cond=2).double()
    x, c = torch.randn(3, 5, 10, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)

    def plain(x, c):
        h = torch.relu(m.first(x) + m.cond(c)[:, None])
        for layer in m.hidden:
            h = torch.relu(layer(h) + h)
        return m.last(h)
    y, y_ref = m(x, c), plain(x, c)
    assert torch.allclose(y, y_ref, atol=1e-12)
    g = torch.autograd.grad((y ** 2).sum(), list(m.parameters()))
    g_ref = torch.autograd.grad((y_ref ** 2).sum(), list(m.parameters()))
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(g, g_ref))
    xr = torch.randn(2, 4, 10, dtype=torch.float64, requires_grad=True)
    small = ResidualMLP(10, 8, 2, 2).double()
    assert torch.autograd.gradcheck(small, (xr,))
    # bfloat16 autocast: float32 outputs of the right size, float32 gradients.
    m32 = ResidualMLP(10, 16, 3, 2, n_cond=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m32(x.float(), c.float())
    out.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in m32.parameters())


def test_lattice_decoding_equals_the_network(monkeypatch):
    """decode_volume's separable first layer (table look-ups) gives the network's own values."""
    import torch
    from flexplugin.engine.methods import DataInfo
    from flexplugin.engine.methods import cryodrgn as C
    torch.manual_seed(0)
    for pe in ("geom_lowf", "geom_ft"):
        model = C.CryoDRGN(C.CryoDRGN.Config(zdim=3, pe=pe, precision="fp32", dec_dim=32, enc_dim=32),
                           DataInfo(box=16, apix=4.0)).eval()
        assert model.pe.separable
        z = torch.randn(3)
        fast = model.decode_volume(z)
        monkeypatch.setattr(C.PositionalEncoding, "separable", property(lambda self: False))
        slow = model.decode_volume(z)
        monkeypatch.undo()
        assert torch.allclose(fast, slow, atol=1e-5 * float(slow.abs().max()))
    gaussian = C.CryoDRGN(C.CryoDRGN.Config(zdim=3, pe="gaussian"), DataInfo(box=16, apix=4.0))
    assert not gaussian.pe.separable
