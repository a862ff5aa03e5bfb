"""Atomic models (PDB / mmCIF, read with gemmi): one pseudo-atom per residue of a polymer, at the
C-alpha of an amino acid and at the C4' of a nucleotide, weighted by the residue's electrons.

Files as the field writes them: in a standard amino acid the atom named CA is the C-alpha whatever
element the file states or implies (MD packages write names from column 13 without an element
column, which gemmi reads as calcium); a calcium ion is its own residue. A blank chain id is
replaced by the residue's segment id (CHARMM/NAMD). Other residues (ligands, waters, ions) are left
out; ``Structure.left_out`` counts their atoms and electrons."""
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

# Electrons of each amino-acid residue in a chain (C6 H1 N7 O8 S16, hydrogens included).
RESIDUE_ELECTRONS = {
    "GLY": 30, "ALA": 38, "SER": 46, "PRO": 52, "VAL": 54, "THR": 54, "CYS": 54, "ILE": 62,
    "LEU": 62, "ASN": 60, "ASP": 60, "GLN": 68, "LYS": 70, "GLU": 68, "MET": 70, "HIS": 72,
    "PHE": 78, "ARG": 84, "TYR": 86, "TRP": 98,
}
# Electrons of each nucleotide in a chain (the phosphate included; hydrogens included).
NUCLEOTIDE_ELECTRONS = {
    "A": 170, "G": 178, "C": 158, "U": 158,
    "DA": 162, "DG": 170, "DC": 150, "DT": 158,
}
# Atom placing a nucleotide's pseudo-atom (present in every nucleotide, the chain ends included).
NUCLEOTIDE_ATOM = "C4'"


@dataclass
class Structure:
    coords: np.ndarray      # (n_models, R, 3) C-alpha positions in Å
    names: list             # residue names (R,)
    chains: list            # chain ids (R,)
    numbers: np.ndarray     # residue numbers (R,)
    electrons: np.ndarray   # (R,) electrons per residue (the pseudo-atom's weight)
    source: str = ""
    left_out: tuple = (0, 0.0)  # (atoms, electrons) of model 1's other residues (ligands, waters, ions)


def _pseudo_atom(res):
    """(atom, electrons) of a polymer residue, or None for any other residue."""
    import gemmi
    info = gemmi.find_tabulated_residue(res.name)
    amino = res.name in RESIDUE_ELECTRONS or (info is not None and info.found() and info.is_amino_acid())
    if amino:
        atom = res.find_atom("CA", "*")
        # an element stated as something else is an MD-style name, not an ion inside a residue
        if atom is not None:
            return atom, RESIDUE_ELECTRONS.get(res.name) or _electrons(res)
        return None
    nucleic = res.name in NUCLEOTIDE_ELECTRONS or (info is not None and info.found() and info.is_nucleic_acid())
    if nucleic:
        atom = res.find_atom(NUCLEOTIDE_ATOM, "*")
        if atom is not None:
            return atom, NUCLEOTIDE_ELECTRONS.get(res.name) or _electrons(res)
    return None


def _electrons(res):
    """Electrons of a residue's atoms, from their names where the element is missing."""
    import gemmi
    total = 0
    for a in res:
        element = a.element
        if element.atomic_number == 0 or (element.name == "Ca" and len(a.name.strip()) > 2):
            element = gemmi.Element(a.name.strip()[:1])
        total += element.atomic_number
    return total


def read_structure(path):
    """All models of a PDB/mmCIF file; every model must hold the same polymer residues."""
    import gemmi
    try:
        st = gemmi.read_structure(str(path))
    except Exception as exc:  # gemmi raises RuntimeError/ValueError with its own text
        raise InputError(path, "cannot read the atomic model (%s)" % exc)
    st.setup_entities()
    models, left_out = [], None
    for model in st:
        rows, skipped = [], [0, 0.0]
        for chain in model:
            for res in chain:
                found = _pseudo_atom(res)
                if found is None:
                    skipped[0] += len(res)
                    skipped[1] += _electrons(res)
                    continue
                atom, z = found
                name = chain.name.strip() or res.segment.strip()
                rows.append((name, res.seqid.num, res.name, z, atom.pos.x, atom.pos.y, atom.pos.z))
        models.append(rows)
        left_out = left_out or tuple(skipped)
    if not models or not models[0]:
        raise InputError(path, "the atomic model has no C-alpha atoms of amino acids nor C4' atoms "
                               "of nucleotides (one pseudo-atom per residue is placed there)")
    ref = [r[:3] for r in models[0]]
    for i, rows in enumerate(models[1:], start=2):
        if [r[:3] for r in rows] != ref:
            raise InputError(path, "model %d does not hold the same residues as model 1" % i)
    coords = np.array([[r[4:] for r in rows] for rows in models], dtype=np.float64)
    return Structure(coords=coords, names=[r[2] for r in models[0]], chains=[r[0] for r in models[0]],
                     numbers=np.array([r[1] for r in models[0]]),
                     electrons=np.array([r[3] for r in models[0]], dtype=np.float64), source=str(path),
                     left_out=left_out)


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
