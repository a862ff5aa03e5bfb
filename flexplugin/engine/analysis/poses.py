"""Pose and latent evaluation against ground truth (HetACUMN's metrics, [HetACUMN, §4.4, §5.1]).

Rotations are RELION matrices A (``geometry/so3.py``): the image is the projection of V(A^T r).

Global alignment. A method that estimates poses without a reference recovers the map only up to
a rotation, and up to its mirror image (projections cannot tell a map from its enantiomer):

- rotated map V'(r) = V(Q r): its projections under A Q are those of V under A
  (V'(Q^T A^T r) = V(A^T r)), so the predicted poses are A_pred = A_true Q for one Q in SO(3):
  the ambiguity acts on the right (Q A_true would be an in-plane change of every image frame);
- mirrored map V'(r) = V(J r), J = diag(1, 1, -1) (any reflection, up to a rotation absorbed in
  Q): its projections under J A J equal those of V under A (J A^T J (x, y, z) = A^T (x, y, -z)
  inside the projection integral), so A_pred = J A_true J Q, i.e. J A_pred J = A_true (J Q J).

:func:`align_rotations` therefore fits Q to the pairs (A_true, A_pred) and to (A_true, J A_pred J),
by orthogonal Procrustes on sum A_true^T A_pred (then refitted on the better half of the
particles, so outliers do not bias it), and keeps the hand with the lower median error.
In-plane shifts are unchanged by both (the image plane is not touched) and need no alignment.

Errors as in the paper: the rotation error is ||A_true - A_pred||_F^2 = 4 - 4 cos(angle) (0 to 8;
see :data:`RANDOM_MEDIAN_ROT_ERROR` for unrelated poses), the shift error ||t_true - t_pred||^2 in
pixels^2; the paper reports medians.
"""
import itertools

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr

from .pca import pca

J = np.diag([1.0, 1.0, -1.0])

# Median ||A - B||_F^2 = 4 - 4 cos w for independent uniform rotations: the angle w has density
# (1 - cos w) / pi, whose median is ~132 degrees, so the median error is ~6.68 (measured over
# 1e5 pairs; an alignment fitted to unrelated poses lowers it to ~6.4-6.5 on 1000-2000 pairs).
RANDOM_MEDIAN_ROT_ERROR = 6.68


def _procrustes(a_true, a_pred, weights=None):
    """Q in SO(3) minimising sum w_i ||A_pred_i - A_true_i Q||_F^2."""
    w = np.ones(len(a_true)) if weights is None else weights
    m = np.einsum("n,nji,njk->ik", w, a_true, a_pred)          # sum A_true^T A_pred
    u, _, vt = np.linalg.svd(m)
    s = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    return u @ s @ vt


def rotation_errors(a_pred, a_true):
    """Per-particle ||A_true - A_pred||_F^2."""
    return ((np.asarray(a_pred) - np.asarray(a_true)) ** 2).sum((-2, -1))


def align_rotations(a_pred, a_true, allow_mirror=True, refine=2):
    """Align predicted rotations (N, 3, 3) to the true ones.

    Returns (aligned predictions (N, 3, 3), Q, mirrored): aligned = A_pred Q^T, or
    J A_pred J Q^T when the mirrored hand fits better (``mirrored`` True).
    """
    a_pred = np.asarray(a_pred, dtype=np.float64)
    a_true = np.asarray(a_true, dtype=np.float64)
    best = None
    for mirrored in ((False, True) if allow_mirror else (False,)):
        p = J @ a_pred @ J if mirrored else a_pred
        q = _procrustes(a_true, p)
        for _ in range(refine):
            err = rotation_errors(p @ q.T, a_true)
            q = _procrustes(a_true, p, (err <= np.median(err)).astype(float))
        aligned = p @ q.T
        med = np.median(rotation_errors(aligned, a_true))
        if best is None or med < best[0]:
            best = (med, aligned, q, mirrored)
    return best[1], best[2], best[3]


def pose_errors(a_pred, a_true, t_pred=None, t_true=None, allow_mirror=True):
    """Median / mean rotation error after global alignment, and shift errors (pixels^2) when
    shifts are given: a dict with ``rot_median``, ``rot_mean``, ``mirrored``, ``angle_median_deg``
    and ``shift_median``, ``shift_mean``."""
    aligned, q, mirrored = align_rotations(a_pred, a_true, allow_mirror=allow_mirror)
    err = rotation_errors(aligned, a_true)
    c = np.clip((np.trace(np.swapaxes(aligned, -1, -2) @ np.asarray(a_true), axis1=-2, axis2=-1)
                 - 1) / 2, -1, 1)
    out = dict(rot_median=float(np.median(err)), rot_mean=float(err.mean()),
               angle_median_deg=float(np.degrees(np.median(np.arccos(c)))),
               mirrored=bool(mirrored), alignment=q)
    if t_pred is not None and t_true is not None:
        se = shift_errors(t_pred, t_true)
        out.update(shift_median=float(np.median(se)), shift_mean=float(se.mean()))
    return out


def shift_errors(t_pred, t_true):
    """Per-particle ||t_true - t_pred||^2 (units of the inputs squared)."""
    return ((np.asarray(t_pred, dtype=np.float64) - np.asarray(t_true, dtype=np.float64)) ** 2).sum(-1)


def pc1(z):
    """Projection of z (N, d) on its first principal component (:func:`.pca.pca`; sign as the SVD
    returns it, arbitrary)."""
    scores = pca(z, 1, orient=False)[0]
    return scores[:, 0] if scores.shape[1] else np.zeros(len(scores))


def spearman_pc1(z, states):
    """|Spearman correlation| of PC1 of z with the ground-truth state (the paper's Corr.)."""
    return float(abs(spearmanr(pc1(z), states).correlation))


def latent_entanglement(z, labels):
    """E_z [HetACUMN, Eq. 11]: mean over class pairs of exp(-(mu_i - mu_j)^2 / (s_i s_j)), with mu and s
    the mean and standard deviation of each class's PC1 projections of z (the paper's scalar
    class statistics; PC1 as in its Figs. 3 and 5). 0 for well separated classes, 1 for none."""
    p = pc1(z)
    labels = np.asarray(labels)
    stats = [(p[labels == k].mean(), p[labels == k].std()) for k in np.unique(labels)]
    terms = [np.exp(-(mi - mj) ** 2 / max(si * sj, 1e-300))
             for (mi, si), (mj, sj) in itertools.combinations(stats, 2)]
    return float(np.mean(terms)) if terms else 0.0


def entanglement(z, labels, rot_median, shift_median_px2, box):
    """E_entangle = E_rot + E_trans + E_z [HetACUMN, §4.4]. The paper does not define E_rot and
    E_trans exactly; our reading of its Tables 1-3 (each value of Table 3 is at least Rot. +
    Trans. / D^2 of Tables 1-2, and equal to it where Err. is 0%): E_rot = median rotation error,
    E_trans = median shift error in box units (pixels^2 / box^2)."""
    e_z = latent_entanglement(z, labels)
    e_pose = float(rot_median) + float(shift_median_px2) / box ** 2
    return dict(E_entangle=e_pose + e_z, E_pose=e_pose, E_z=e_z)


def classification_error(pred, labels):
    """Fraction of misclassified particles after the best matching of predicted to true classes
    (Hungarian algorithm; the paper's Err.)."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    a, b = np.unique(pred, return_inverse=True)[1], np.unique(labels, return_inverse=True)[1]
    counts = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(counts, (a, b), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(1 - counts[rows, cols].sum() / len(pred))
