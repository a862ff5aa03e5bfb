"""The posterior mean of z by importance sampling (``methods/posterior.py``), shared by cryoSPHERE
and HetACUMN: against the exact posterior of a linear Gaussian model."""
import numpy as np
import torch

from flexplugin.engine.methods.posterior import posterior_mean, sample_generator


def test_importance_sampling_gives_the_exact_posterior_mean_of_a_linear_model():
    """y = z u + noise (sigma 1, 400 observations, |u|^2 = 4), prior N(0, 1): E[z | y] =
    (u.y) / (1 + |u|^2). The encoder's q is centred on the truth but too narrow (0.1; the
    posterior's std is 0.45); the estimate moves to the posterior mean, the encoder's mean does
    not."""
    g = torch.Generator().manual_seed(0)
    p, b = 400, 64
    u = torch.full((p,), 0.1, dtype=torch.float64)
    z_true = torch.randn(b, 1, generator=g, dtype=torch.float64)
    y = z_true * u + torch.randn(b, p, generator=g, dtype=torch.float64)
    exact = (y @ u)[:, None] / (1 + u @ u)

    def residuals(zs, rows):
        return ((y[rows][:, None, :] - zs * u) ** 2).sum(-1), p

    est = posterior_mean(z_true.clone(), torch.full((b, 1), 0.1, dtype=torch.float64), residuals,
                         4096, 4.0, torch.Generator().manual_seed(1))
    err = (est - exact).abs()
    before = (z_true - exact).abs().mean().item()
    print("posterior mean: mean error %.4f, max %.4f (the encoder's mean: %.3f)"
          % (err.mean(), err.max(), before))
    # the noise variance is estimated from 400 residuals at q's mean (+-7%)
    assert err.mean() < 0.03 and err.max() < 0.15 and before > 0.2


def test_samples_depend_on_the_batch_only():
    a = sample_generator({"index": torch.tensor([7, 8])}, "cpu")
    torch.manual_seed(123)
    b = sample_generator({"index": torch.tensor([7, 3])}, "cpu")
    assert torch.equal(torch.randn(5, generator=a), torch.randn(5, generator=b))


def test_hetacumn_encodes_the_posterior_mean():
    """HetACUMN's encode: z_samples 0 gives the encoder's mean; with samples, the posterior mean
    at the particle's pose (a different z, the same for the same batch), and the mirror path's
    choice is unchanged."""
    from flexplugin.engine.methods.base import DataInfo
    from flexplugin.engine.methods.hetacumn import HetACUMN
    g = torch.Generator().manual_seed(0)
    from flexplugin.engine.geometry import so3
    rot = torch.as_tensor(so3.random_rotations(6, np.random.default_rng(0)), dtype=torch.float32)
    batch = {"images": torch.randn(6, 32, 32, generator=g), "index": torch.arange(6),
             "rotations": rot, "shifts_px": torch.zeros(6, 2)}
    zs = {}
    for ignore in (False, True):
        for samples in (0, 16):
            torch.manual_seed(0)
            m = HetACUMN(HetACUMN.Config(zdim=2, enc_dim=4, head_dim=8, dec_dim=8, dec_layers=1,
                                         ignore_poses=ignore, z_samples=samples),
                         DataInfo(box=32, apix=3.0)).eval()
            zs[ignore, samples] = m.encode(batch)
        again = m.encode(batch)
        assert torch.equal(again.z, zs[ignore, 16].z)
        assert not torch.allclose(zs[ignore, 0].z, zs[ignore, 16].z)
        assert torch.equal(zs[ignore, 0].rotations, zs[ignore, 16].rotations)
    torch.manual_seed(0)
    m = HetACUMN(HetACUMN.Config(zdim=2, enc_dim=4, head_dim=8, dec_dim=8, dec_layers=1,
                                 ignore_poses=False), DataInfo(box=32, apix=3.0)).eval()
    with torch.no_grad():
        mu = m._encode(batch["images"], given=(batch["rotations"], batch["shifts_px"]))[2]
    assert torch.allclose(zs[False, 0].z, mu)
