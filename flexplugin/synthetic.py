"""A synthetic two-domain C-alpha model: the atomic-model input of the demo, the tutorials and
the tests of atomic-model methods (cryoSPHERE). Pure numpy, no Scipion, no torch::

    python -m flexplugin.synthetic two_domains.pdb [--per-domain 50] [--seed 7]
"""
import argparse
import os
import sys

import numpy as np


def two_domain_chain(n_per=50, radius=11.0, seed=7):
    """C-alpha chain (2 n_per, 3) Å: two compact random-walk domains (3.8 Å steps, non-adjacent
    residues >= 4 Å apart), each inside a sphere of ``radius``, the second starting where the
    first ends."""
    rng = np.random.default_rng(seed)

    def walk(start, centre, n):
        pts = [start]
        while len(pts) < n:
            for _ in range(2000):
                u = rng.normal(size=3)
                p = pts[-1] + 3.8 * u / np.linalg.norm(u)
                if np.linalg.norm(p - centre) <= radius and (
                        len(pts) < 2 or np.linalg.norm(np.array(pts[:-1]) - p, axis=1).min() >= 4.2):
                    pts.append(p)
                    break
            else:
                return None
        return np.array(pts)

    while True:
        d1 = walk(rng.normal(size=3), np.zeros(3), n_per)
        if d1 is None:
            continue
        u = d1[-1] / np.linalg.norm(d1[-1])
        d2 = walk(d1[-1] + 3.8 * u, d1[-1] + (radius + 2.8) * u, n_per)
        if d2 is None:
            continue
        x = np.concatenate([d1, d2])
        dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
        if dist[np.triu_indices(len(x), 2)].min() >= 4.0:
            return x


def write_pdb(path, coords, rna_from=None):
    """Write C-alpha coordinates (R, 3) Å as a one-chain PDB file; returns ``path``. With
    ``rna_from`` the residues from that index on are an RNA chain B instead (nucleotides A, G, C,
    U, one C4' atom each): a protein + RNA model."""
    names = ["ALA", "GLY", "LEU", "SER", "LYS", "GLU"]
    bases = ["A", "G", "C", "U"]
    rna_from = len(coords) if rna_from is None else rna_from
    lines = []
    for i, p in enumerate(coords):
        if i < rna_from:
            lines.append("ATOM  %5d  CA  %3s A%4d    %8.3f%8.3f%8.3f  1.00  0.00           C"
                         % (i + 1, names[i % 6], i + 1, *p))
        else:
            if i == rna_from and i:
                lines.append("TER")
            lines.append("ATOM  %5d  C4' %3s B%4d    %8.3f%8.3f%8.3f  1.00  0.00           C"
                         % (i + 1, bases[i % 4], i - rna_from + 1, *p))
    with open(os.fspath(path), "w") as f:
        f.write("\n".join(lines + ["END"]) + "\n")
    return path


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m flexplugin.synthetic",
                                description="Write a synthetic two-domain C-alpha model (PDB).")
    p.add_argument("out", help="output .pdb file")
    p.add_argument("--per-domain", type=int, default=50, help="residues per domain")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rna", action="store_true", help="the second domain as an RNA chain B")
    a = p.parse_args(argv)
    write_pdb(a.out, two_domain_chain(a.per_domain, seed=a.seed), a.per_domain if a.rna else None)
    print("wrote %s (%d pseudo-atoms, two domains%s)" % (a.out, 2 * a.per_domain,
                                                         ": protein chain A, RNA chain B" if a.rna else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
