"""Atomic models (PDB / mmCIF, read with gemmi): one pseudo-atom per residue at its C-alpha."""
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

# Electrons of each amino-acid residue in a chain (C6 H1 N7 O8 S16, hydrogens included).
RESIDUE_ELECTRONS = {
    "GLY": 30, "ALA": 38, "SER": 46, "PRO": 52, "VAL": 54, "THR": 54, "CYS": 54, "ILE": 62,
    "LEU": 62, "ASN": 60, "ASP": 60, "GLN": 68, "LYS": 70, "GLU": 68, "MET": 70, "HIS": 72,
    "PHE": 78, "ARG": 84, "TYR": 86, "TRP": 98,
}


@dataclass
class Structure:
    coords: np.ndarray      # (n_models, R, 3) C-alpha positions in Å
    names: list             # residue names (R,)
    chains: list            # chain ids (R,)
    numbers: np.ndarray     # residue numbers (R,)
    electrons: np.ndarray   # (R,) electrons per residue (the pseudo-atom's weight)
    source: str = ""


def read_structure(path):
    """All models of a PDB/mmCIF file; every model must hold the same C-alpha residues."""
    import gemmi
    try:
        st = gemmi.read_structure(str(path))
    except Exception as exc:  # gemmi raises RuntimeError/ValueError with its own text
        raise InputError(path, "cannot read the atomic model (%s)" % exc)
    st.setup_entities()
    models = []
    for model in st:
        rows = []
        for chain in model:
            for res in chain:
                ca = res.find_atom("CA", "*")
                if ca is None or (ca.element.name != "C"):
                    continue
                z = RESIDUE_ELECTRONS.get(res.name)
                if z is None:
                    z = sum(a.element.atomic_number for a in res)
                rows.append((chain.name, res.seqid.num, res.name, z, ca.pos.x, ca.pos.y, ca.pos.z))
        models.append(rows)
    if not models or not models[0]:
        raise InputError(path, "the atomic model has no C-alpha atoms (one pseudo-atom per residue "
                               "is placed at its CA)")
    ref = [r[:3] for r in models[0]]
    for i, rows in enumerate(models[1:], start=2):
        if [r[:3] for r in rows] != ref:
            raise InputError(path, "model %d does not hold the same residues as model 1" % i)
    coords = np.array([[r[4:] for r in rows] for rows in models], dtype=np.float64)
    return Structure(coords=coords, names=[r[2] for r in models[0]], chains=[r[0] for r in models[0]],
                     numbers=np.array([r[1] for r in models[0]]),
                     electrons=np.array([r[3] for r in models[0]], dtype=np.float64), source=str(path))


def write_ca_pdb(path, structure, coords):
    """A C-alpha-only PDB with the residues of ``structure`` at ``coords`` (R, 3) Å (written
    atomically)."""
    lines = []
    for i, (c, (x, y, z)) in enumerate(zip(structure.chains, coords), start=1):
        lines.append("ATOM  %5d  CA  %3s %1s%4d    %8.3f%8.3f%8.3f  1.00  0.00           C"
                     % (i % 100000, structure.names[i - 1], (c or "A")[:1], structure.numbers[i - 1] % 10000,
                        x, y, z))
    lines.append("END")
    from .mrc import atomic_path
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
