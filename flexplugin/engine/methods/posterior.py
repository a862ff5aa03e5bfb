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
def posterior_mean(mu, std, residuals, samples, widen, gen, chunk=32):
    """E[z | image] (b, zdim) for the encoder's ``mu`` and ``std`` (b, zdim), ``chunk`` particles
    at a time.

    :param residuals: ``residuals(zs, rows)`` for latents zs (n, s + 1, zdim) of the particles
        ``rows`` (a slice) -> (squared residual sums (n, s + 1), observations per image (n,) or a
        number): the image against the prediction at each latent, summed over what the likelihood
        counts (pixels, Fourier components).
    """
    out = []
    for i in range(0, len(mu), chunk):
        rows = slice(i, i + chunk)
        m, sd = mu[rows], widen * std[rows]
        eps = torch.randn(len(m), samples, m.shape[1], device=m.device, generator=gen)
        zs = torch.cat([m[:, None], m[:, None] + sd[:, None] * eps], 1)      # (n, s + 1, zdim)
        res, n_obs = residuals(zs, rows)
        var = (res[:, 0] / n_obs).clamp_min(1e-30)                          # noise, at mu
        logq = -0.5 * (((zs - m[:, None]) / sd[:, None]) ** 2).sum(-1)
        logw = -res / (2 * var[:, None]) - 0.5 * (zs ** 2).sum(-1) - logq
        # q's own mean as a sample: weighted as one draw of the same proposal
        w = torch.softmax(logw, dim=1)
        out.append((w[..., None] * zs).sum(1))
    return torch.cat(out) if out else mu.clone()
