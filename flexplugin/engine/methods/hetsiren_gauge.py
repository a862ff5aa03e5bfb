"""HetSIREN's latent in the metric of its decoded maps (see ``hetsiren.py``, "Latent gauge").

HetSIREN's z has no prior (a deterministic autoencoder [HetSIREN, Methods "HetSIREN network
architecture"]): any invertible linear map of z, undone by the decoder's first layer, decodes the
same maps, so the scale and orientation of z carry no meaning and its principal components need not
follow the conformation. A direction of z the decoder barely uses can spread as widely as the
conformation's, since nothing holds it. Measured on a held-out 1D motion (D=32, 3000 particles, 10
states, SNR 0.1, 45 degrees, 20 epochs): |Spearman(PC1 of z, state)| 0.260 and 0.029 on two
training seeds, while the first principal component of the decoded maps orders the states at
0.773 and 0.742.

At the end of training (``settle``) z is re-expressed in coordinates where equal steps of z change
the decoded map equally: with the least-squares linear map A (zdim x voxels) from z (centred) to the
decoded change dV over the particles, z' = (z - mean) (A A^T)^(1/2) R / s, R the principal axes of
the result (the first coordinate is the direction of the largest change) and s the standard
deviation of the first coordinate (so it has unit spread). ``encode`` returns z', ``decode_volume``
takes z' and decodes the same maps as before; training itself is unchanged (it works on the
encoder's own z)."""
import torch

# Directions of z whose decoded change is below this fraction of the largest keep this fraction
# (the map stays invertible; such directions shrink to nearly nothing).
GAUGE_FLOOR = 1e-6
GAUGE_BATCH = 512


class LatentGauge:
    """Mixed into :class:`~flexplugin.engine.methods.hetsiren.HetSIREN`: uses its ``_delta`` and
    ``dec_w`` and fills its ``z_gauge`` / ``z_gauge_inv`` / ``z_origin`` buffers."""

    def _init_gauge(self, zdim):
        self.register_buffer("z_gauge", torch.eye(zdim))
        self.register_buffer("z_gauge_inv", torch.eye(zdim))
        self.register_buffer("z_origin", torch.zeros(zdim))

    def _to_user(self, z):
        """The encoder's z (B, zdim) -> the z the user sees."""
        return (z - self.z_origin) @ self.z_gauge

    def _from_user(self, z):
        """The z the user sees (B, zdim) -> the encoder's z (the decoder's input)."""
        return z @ self.z_gauge_inv + self.z_origin

    def _load_from_state_dict(self, state, prefix, *args, **kwargs):
        # checkpoints written before the gauge: the identity
        for name in ("z_gauge", "z_gauge_inv", "z_origin"):
            if prefix + name not in state and hasattr(self, name):
                state[prefix + name] = getattr(self, name).clone()
        super()._load_from_state_dict(state, prefix, *args, **kwargs)

    @torch.no_grad()
    def settle(self, z_user, log=print):
        z = torch.as_tensor(z_user, dtype=torch.float64)
        if z.shape[1] == 0 or len(z) < 2 * z.shape[1] + 1 or self._delta(self.z_origin[None]) is None:
            return super().settle(z_user, log)
        dev = self.z_gauge.device
        zi = self._from_user(z.to(dev).float()).double().cpu()    # the encoder's z
        origin = zi.mean(0)
        zc = zi - origin
        # B = zc^T dV over all particles, in batches (sum zc = 0, so dV needs no centring)
        b = 0
        for i in range(0, len(zi), GAUGE_BATCH):
            dv = (self._delta(zi[i:i + GAUGE_BATCH].float().to(dev)) * self.dec_w).double().cpu()
            b = b + zc[i:i + GAUGE_BATCH].t() @ dv
        c_inv = torch.linalg.pinv(zc.t() @ zc)
        a = c_inv @ b                                              # zdim x voxels
        w, v = torch.linalg.eigh(a @ a.t())
        w = w.clamp(min=float(w.max()) * GAUGE_FLOOR if float(w.max()) > 0 else 1.0)
        s = v @ torch.diag(w.sqrt()) @ v.t()
        y = zc @ s
        _, _, vt = torch.linalg.svd(y, full_matrices=False)
        r = vt.t()
        r = r * torch.sign(r.gather(0, r.abs().argmax(0, keepdim=True)))   # largest loading > 0
        g = s @ r
        g = g / (zc @ g)[:, 0].std()
        self.z_gauge.copy_(g.float())
        self.z_gauge_inv.copy_(torch.linalg.inv(g).float())
        self.z_origin.copy_(origin.float())
        out = ((zi - origin) @ g).float()
        log("train: z in the metric of the decoded maps (spread of its coordinates: %s)"
            % " ".join("%.2g" % x for x in out.std(0).tolist()))
        return out.numpy()
