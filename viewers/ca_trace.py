"""C-alpha traces of atomic models (no Qt): :func:`read_ca_trace` reads a PDB or mmCIF file with the
engine's reader (:func:`flexplugin.engine.io.structure.read_trace`: the residues the engine reads,
one pseudo-atom each); :func:`ca_bonds` says which consecutive atoms are bonded."""
import numpy as np

__all__ = ["read_ca_trace", "ca_bonds"]

# Consecutive pseudo-atoms further apart are a chain break (no bond drawn): C-alpha atoms of
# bonded amino acids are 3.8 Å apart, the C4' atoms of bonded nucleotides 4.5-7 Å.
MAX_BOND_A = 7.5


def read_ca_trace(path, use_gemmi=None):
    """The pseudo-atoms of the first model of a PDB or mmCIF file, in file order: ``(coords (R, 3)
    Å, residue numbers (R,), chain ids (R,))``: the C-alpha of each amino acid and the C4' of each
    nucleotide, the residues a cryoSPHERE run segments (:func:`~flexplugin.engine.io.structure.
    read_trace`; ``use_gemmi`` None: gemmi when it can be imported, the engine's own reader of
    PDB/mmCIF atom records otherwise). ValueError naming the file when it has none or cannot be
    read."""
    from flexplugin.engine.errors import InputError
    from flexplugin.engine.io.structure import read_trace
    try:
        return read_trace(path, use_gemmi=use_gemmi)
    except InputError as e:
        raise ValueError(str(e)) from None


def ca_bonds(coords, chains, numbers=None):
    """Indices i where residues i and i + 1 are bonded: same chain, pseudo-atoms at most
    ``MAX_BOND_A`` apart and, when ``numbers`` (residue numbers) are given, consecutive numbers
    (a gap in the numbering is a break, however short the distance)."""
    if len(coords) < 2:
        return np.zeros(0, dtype=np.int64)
    d = np.linalg.norm(np.diff(coords, axis=0), axis=1)
    bonded = (d <= MAX_BOND_A) & (chains[1:] == chains[:-1])
    if numbers is not None:
        bonded &= np.diff(np.asarray(numbers)) == 1
    return np.flatnonzero(bonded)
