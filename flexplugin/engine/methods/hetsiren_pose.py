"""HetSIREN's local pose refinement: a Gauss-Newton fit of each particle's pose to the decoded map
with a Gaussian prior around the input pose (see ``hetsiren.py``, "Pose refinement")."""
import math

import torch
import torch.nn.functional as F

from ..geometry.ctf import ctf_2d
from ..geometry.fourier import fft2_center, ifft2_center
from ..geometry.projection import splat_bilinear
from ..geometry.so3 import axis_angle_to_matrix_torch, clamp_norm_torch


class LocalPoseRefinement:
    """Mixed into :class:`~flexplugin.engine.methods.hetsiren.HetSIREN`: uses its config, data
    info, voxel coordinates, blur, reference envelope, window and Fourier derivative grid."""

    def _remember(self, idx, corr):
        idx = idx.long().cpu()
        n = int(idx.max()) + 1
        if self._pose_mem is None or len(self._pose_mem) < n:
            grown = torch.zeros(max(n, 2 * len(self._pose_mem) if self._pose_mem is not None else n), 5)
            if self._pose_mem is not None:
                grown[:len(self._pose_mem)] = self._pose_mem
            self._pose_mem = grown
        self._pose_mem[idx] = corr.float().cpu()

    def _refine_local(self, img, vals, rot, shifts, ctf, steps, w0=None, s0=None, chunk=64):
        """Gauss-Newton refinement of the poses against the decoded maps: the image is fitted by
        ``a * (p + J delta)``, p the (CTF-filtered) projection at the current pose and J its
        derivatives with respect to a small rotation (axis-angle, radians) and shift (pixels),
        a a free scale; -> (rotation vectors (B, 3) to apply on the left, shift changes (B, 2)).

        J comes from two splats: a small rotation w moves the rotated voxel q to q + w x q, so
        dP/dw_x = d_y P_z, dP/dw_y = -d_x P_z, dP/dw_z = d_x P_y - d_y P_x and dP/dshift = grad P,
        where P_c is the projection of the voxel values times their rotated coordinate c (P_x,
        P_y are P times the pixel coordinates) and the image derivatives are taken in Fourier
        space with the CTF."""
        if len(img) > chunk:
            def cut(t, i):
                return None if t is None else t[i:i + chunk]
            parts = [self._refine_local(*(cut(t, i) for t in (img, vals, rot, shifts, ctf)), steps,
                                        cut(w0, i), cut(s0, i), chunk)
                     for i in range(0, len(img), chunk)]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        cfg, d = self.config, self.data_info.box
        n, p = len(img), cfg.ctf_pad * d
        a0 = p // 2 - d // 2
        filt = self.blur if ctf is None else self.blur * ctf_2d(p, self.data_info.apix, ctf,
                                                                device=img.device)
        if self.envelope is not None:            # the image model's, as in ``_filter``
            filt = filt * self.envelope
        kx, ky = self.dgrid[..., 0], self.dgrid[..., 1]
        pix = torch.arange(d, dtype=torch.float32, device=img.device)
        max_w = math.radians(cfg.max_delta_deg)
        w = torch.zeros(n, 3, device=img.device) if w0 is None else w0.float()
        s = torch.zeros(n, 2, device=img.device) if s0 is None else s0.float()
        lp = torch.exp(-0.5 * (self.dgrid.abs() ** 2).sum(-1) / (2 * math.pi * cfg.pose_lowpass) ** 2) \
            if cfg.pose_lowpass > 0 else None
        if lp is not None:      # the same low-pass on the images and on the model
            filt = filt * lp
            yp = F.pad(img, (a0, p - d - a0, a0, p - d - a0))
            img = ifft2_center(fft2_center(yp) * lp).real[..., a0:a0 + d, a0:a0 + d] * self.window
        y = img.reshape(n, -1)
        prec = torch.tensor([cfg.pose_sigma_px ** -2] * 2 + [math.radians(cfg.pose_sigma_deg) ** -2] * 3,
                            device=img.device)
        for _ in range(steps):
            r = axis_angle_to_matrix_torch(w) @ rot
            q = torch.matmul(r, self.vox_xyz.t())                          # (n, 3, M)
            c = d // 2 - (shifts + s)
            px, py = q[:, 0] + c[:, :1], q[:, 1] + c[:, 1:]
            both = splat_bilinear(px, py, torch.stack([vals, vals * q[:, 2]], 1), d)
            pp, pz = both[:, 0], both[:, 1]
            pxw = (pix[None, None, :] - c[:, 0, None, None]) * pp
            pyw = (pix[None, :, None] - c[:, 1, None, None]) * pp
            st = F.pad(torch.stack([pp, pz, pxw, pyw], 1), (a0, p - d - a0, a0, p - d - a0))
            f = fft2_center(st) * filt[:, None] if filt.ndim == 3 else fft2_center(st) * filt
            cols = torch.stack([f[:, 0], kx * f[:, 0], ky * f[:, 0], ky * f[:, 1], -kx * f[:, 1],
                                kx * f[:, 3] - ky * f[:, 2]], 1)
            cols = ifft2_center(cols).real[..., a0:a0 + d, a0:a0 + d] * self.window
            cm = cols.reshape(n, 6, -1)
            # The scale first, then the pose change of the MAP fit with the Gaussian prior
            # around the input pose, the noise variance taken from the residual.
            p0 = cm[:, 0]
            a = ((p0 * y).sum(-1) / (p0 * p0).sum(-1).clamp_min(1e-12)).clamp_min(1e-3)
            res = y - a[:, None] * p0
            var = (res * res).sum(-1) / self.window.pow(2).sum()
            jac = a[:, None, None] * cm[:, 1:]
            x = torch.cat([s, w], 1)
            g = jac @ jac.transpose(1, 2) + var[:, None, None] * torch.diag_embed(prec.expand(n, 5))
            rhs = (jac @ res[:, :, None])[..., 0] - var[:, None] * prec * x
            step = torch.linalg.solve(g, rhs)
            # At most a quarter of the bounds per step, and within the bounds in total.
            s = clamp_norm_torch(s + clamp_norm_torch(step[:, :2], cfg.max_delta_px / 4),
                                 cfg.max_delta_px)
            w = clamp_norm_torch(w + clamp_norm_torch(step[:, 2:], max_w / 4), max_w)
        return w, s

    # -- contract ------------------------------------------------------------------------------
