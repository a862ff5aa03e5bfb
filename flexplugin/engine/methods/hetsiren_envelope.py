"""HetSIREN's reference envelope: the radial filter that makes a reference map project as the data
(see ``hetsiren.py``, "Image model")."""
import numpy as np
import torch

from ..geometry.fourier import fft2_center, freqs_1d, radial_index

# The reference's radial envelope (``_fit_envelope``): particles it is fitted on, its largest
# factor, and the significance of a shell's correlation (in units of 1 / sqrt(samples)).
ENVELOPE_IMAGES = 2048
ENVELOPE_MAX = 10.0
ENVELOPE_SIGMAS = 4.0


class ReferenceEnvelope:
    """Mixed into :class:`~flexplugin.engine.methods.hetsiren.HetSIREN`: uses its config, data
    info, base map, projector and filter, and fills its ``envelope`` buffer."""

    @torch.no_grad()
    def _fit_envelope(self, dataset, rows, log):
        """The reference's radial envelope: per Fourier shell s of the images, the least-squares
        factor e_s = sum Re(I conj(P)) / sum |P|^2 of the images I on the reference's filtered
        projections P at the particles' poses and CTFs (``ENVELOPE_IMAGES`` particles), clamped to
        [0, ``ENVELOPE_MAX``], from the lowest shell up to the first where I and P do not correlate
        above ``ENVELOPE_SIGMAS`` times the correlation of noise; 1 from there on. A reference that is Wiener-filtered
        (its amplitudes falling before the data's) or scaled otherwise than the images then
        projects as the data; without it the residual of the reference depends on the view, and
        z learns the view (measured at D=64, SNR 0.1: R^2 0.16 of a view term from z)."""
        d = self.data_info.box
        if len(rows) > ENVELOPE_IMAGES:
            rows = np.sort(np.random.default_rng(0).choice(rows, ENVELOPE_IMAGES, replace=False))
        shell = radial_index(d, 2).reshape(-1)
        n_s = d // 2 + 1
        keep = shell < n_s
        shell = shell[keep]
        sums = torch.zeros(4, n_s, dtype=torch.float64)       # I.P, |P|^2, |I|^2, samples
        base = self._base().detach().float()
        dev = base.device
        for i in range(0, len(rows), 256):
            b = dataset[rows[i:i + 256]]
            ctf = b["ctf"].to(dev) if "ctf" in b else None
            proj = self._filter(self._project(base.expand(len(b["images"]), -1),
                                              b["rotations"].to(dev), b["shifts_px"].to(dev)), ctf)
            img = b["images"].to(dev).float() * (dataset.scale / self.data_info.scale)
            fi = fft2_center(img).flatten(1)[:, keep].cpu()
            fp = fft2_center(proj).flatten(1)[:, keep].cpu()
            for k, v in enumerate(((fi * fp.conj()).real, fp.abs() ** 2, fi.abs() ** 2,
                                   torch.ones_like(fp.real))):
                sums[k].index_add_(0, shell, v.sum(0).double())
        ip, pp, ii, n = sums
        corr = ip / torch.sqrt(pp * ii).clamp_min(1e-30)
        # fitted up to the first shell without a measurable correlation, 1 from there on
        measured = torch.cumprod((corr > ENVELOPE_SIGMAS / torch.sqrt(n.clamp_min(1))).long(), 0) > 0
        env = torch.where(measured, (ip / pp.clamp_min(1e-30)).clamp(0, ENVELOPE_MAX),
                          torch.ones_like(ip))
        # onto the padded grid of ``_filter`` (its radius / ctf_pad is the images' shell)
        p = self.config.ctf_pad * d
        fp_ = freqs_1d(p) * d
        r = torch.sqrt(fp_[None, :] ** 2 + fp_[:, None] ** 2)
        lo = r.floor().long().clamp(max=n_s - 1)
        hi = (lo + 1).clamp(max=n_s - 1)
        w = (r - lo).clamp(0, 1)
        grid = env[lo] * (1 - w) + env[hi] * w
        self.envelope.copy_(torch.where(r <= n_s - 1, grid, torch.ones_like(grid)).float())
        res = ["%.0f Å %.2f" % (d * self.data_info.apix / s, float(env[s]))
               for s in range(2, n_s, max(1, n_s // 6))]
        log("train: reference envelope from %d particles (shell: factor): %s"
            % (len(rows), ", ".join(res)))
