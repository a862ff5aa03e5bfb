"""Scores of decoded atomic models against a known answer (simulations, benchmarks)."""
import numpy as np


def rmsd(a, b):
    """C-alpha RMSD (Å) between coordinate arrays (..., R, 3), no superposition (same frame)."""
    return np.sqrt(((np.asarray(a) - np.asarray(b)) ** 2).sum(-1).mean(-1))


def segment_match(segments, truth):
    """Fraction of residues whose learned segment stands for their true domain: each learned
    segment counts for the domain most of its residues belong to (so more learned segments than
    domains is no penalty, a segment spanning two domains is)."""
    segments, truth = np.asarray(segments), np.asarray(truth)
    return sum(np.bincount(truth[segments == s]).max() for s in np.unique(segments)) / len(truth)
