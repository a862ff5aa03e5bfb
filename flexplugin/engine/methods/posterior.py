"""The posterior mean of z by importance sampling, shared by the methods whose encoder gives a
Gaussian q(z | image) (cryoSPHERE, HetACUMN): ``Config.z_samples`` / ``z_widen``.

The amortised encoder's mean is a noisier estimate of a particle's conformation than the posterior
its own decoder defines (measured in benchmarks/RESULTS.md): E[z | y] is estimated by
self-normalised importance sampling, samples z_s ~ N(mu, (c std)^2) plus mu itself, weights
p(y | z_s) N(z_s; 0, I) / q(z_s), p(y | z) Gaussian with the noise variance from the residual at mu
(our choice)."""
import torch


def sample_generator(batch, device):
    """A generator seeded by the batch's first particle: encoding is reproducible and does not
    depend on (or change) the global RNG state."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(batch["index"][0]) if "index" in batch else 0)
    return gen


@torch.no_grad()
def posterior_mean(mu, std, residuals, samples, widen, gen):
    """E[z | image] (b, zdim) for the encoder's ``mu`` and ``std`` (b, zdim).

    :param residuals: ``residuals(zs)`` for latents zs (b, s + 1, zdim) -> (squared residual sums
        (b, s + 1), observations per image (b,) or a number): the image against the prediction at
        each latent, summed over what the likelihood counts (pixels, Fourier components).
    """
    b = len(mu)
    sd = widen * std
    eps = torch.randn(b, samples, mu.shape[1], device=mu.device, generator=gen)
    zs = torch.cat([mu[:, None], mu[:, None] + sd[:, None] * eps], 1)      # (b, s + 1, zdim)
    res, n_obs = residuals(zs)
    var = (res[:, 0] / n_obs).clamp_min(1e-30)                            # noise, at mu
    logq = -0.5 * (((zs - mu[:, None]) / sd[:, None]) ** 2).sum(-1)
    logw = -res / (2 * var[:, None]) - 0.5 * (zs ** 2).sum(-1) - logq
    # q's own mean as a sample: weighted as one draw of the same proposal
    w = torch.softmax(logw, dim=1)
    return (w[..., None] * zs).sum(1)
