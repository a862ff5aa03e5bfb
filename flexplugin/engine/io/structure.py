"""Atomic models (PDB / mmCIF, read with gemmi): one pseudo-atom per residue of a polymer, at the
C-alpha of an amino acid and at the C4' of a nucleotide, weighted by the residue's electrons.

Files as the field writes them: in a standard amino acid the atom named CA is the C-alpha whatever
element the file states or implies (MD packages write names from column 13 without an element
column, which gemmi reads as calcium); a calcium ion is its own residue. A blank chain id is
replaced by the residue's segment id (CHARMM/NAMD). Other residues (ligands, waters, ions) are left
out; ``Structure.left_out`` counts their atoms and electrons. With ``ligands`` a heavy ligand (at
least ``LIGAND_MIN_ATOMS`` non-hydrogen atoms, not a water) is one pseudo-atom too, at its
electron-weighted centre, placed on the residue axis after the nearest polymer residue of its
chain (so the segmentation, contiguous along that axis, moves it with the residues around it)."""
import re
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
# A heavy ligand (read as a pseudo-atom with ``ligands``): at least this many non-hydrogen atoms,
# i.e. a nucleotide cofactor, a heme, a glycan unit, a drug; not an ion, a water, a sulfate or a
# glycerol (our choice).
LIGAND_MIN_ATOMS = 10
# The name written for a ligand's pseudo-atom (a HETATM record).
LIGAND_ATOM = "X"


@dataclass
class Structure:
    coords: np.ndarray      # (n_models, R, 3) C-alpha positions in Å
    names: list             # residue names (R,)
    chains: list            # chain ids (R,)
    numbers: np.ndarray     # residue numbers (R,)
    electrons: np.ndarray   # (R,) electrons per residue (the pseudo-atom's weight)
    source: str = ""
    left_out: tuple = (0, 0.0)  # (atoms, electrons) of model 1's other residues (ligands, waters, ions)
    ligands: int = 0            # heavy ligands read as pseudo-atoms (``read_structure(ligands=True)``)


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


def _atom_electrons(atom):
    """Electrons of an atom, from its name where the element is missing (or read as calcium from an
    MD-style name such as "CA1")."""
    import gemmi
    element = atom.element
    if element.atomic_number == 0 or (element.name == "Ca" and len(atom.name.strip()) > 2):
        element = gemmi.Element(atom.name.strip()[:1])
    return element.atomic_number


def _electrons(res):
    """Electrons of a residue's atoms, from their names where the element is missing."""
    return sum(_atom_electrons(a) for a in res)


def _heavy_ligand(res):
    """(x, y, z, electrons) of a heavy ligand: its electron-weighted centre and its electrons; None
    for a water or a residue of fewer than ``LIGAND_MIN_ATOMS`` non-hydrogen atoms (alternate
    locations counted once)."""
    if res.is_water():
        return None
    atoms = {}
    for a in res:
        if not a.is_hydrogen():
            atoms.setdefault(a.name, a)
    if len(atoms) < LIGAND_MIN_ATOMS:
        return None
    weights = np.array([_atom_electrons(a) for a in atoms.values()], dtype=np.float64)
    pos = np.array([[a.pos.x, a.pos.y, a.pos.z] for a in atoms.values()])
    centre = weights @ pos / weights.sum()
    return tuple(float(v) for v in centre) + (_electrons(res),)


def _read_gemmi(path):
    """The gemmi Structure of a PDB/mmCIF file (entities set up); InputError when gemmi cannot read it."""
    import gemmi
    try:
        st = gemmi.read_structure(str(path))
    except Exception as exc:  # gemmi raises RuntimeError/ValueError with its own text
        raise InputError(path, "cannot read the atomic model (%s)" % exc)
    st.setup_entities()
    return st


def _model_rows(model, ligands=False):
    """``(rows, (atoms, electrons) left out, heavy ligands)`` of a gemmi model: one row ``(chain,
    number, name, electrons, x, y, z)`` per polymer residue, at its pseudo-atom, and with
    ``ligands`` one per heavy ligand, after the nearest polymer residue of its chain (of any
    chain when its chain has none, then after the end of that residue's chain)."""
    rows, extra, skipped = [], [], [0, 0.0]
    for chain in model:
        for res in chain:
            name = chain.name.strip() or res.segment.strip()
            found = _pseudo_atom(res)
            if found is not None:
                atom, z = found
                rows.append((name, res.seqid.num, res.name, z, atom.pos.x, atom.pos.y, atom.pos.z))
                continue
            lig = _heavy_ligand(res) if ligands else None
            if lig is not None:
                extra.append((name, res.seqid.num, res.name, lig[3]) + lig[:3])
                continue
            skipped[0] += len(res)
            skipped[1] += _electrons(res)
    return _place_ligands(rows, extra), tuple(skipped), len(extra)


def _place_ligands(rows, ligands):
    """``rows`` with each ligand row inserted after the nearest row of its chain (see
    :func:`_model_rows`); ligands after the same row keep their file order."""
    if not ligands or not rows:
        return rows + ligands
    xyz = np.array([r[4:] for r in rows], dtype=np.float64)
    chains = np.array([r[0] for r in rows])
    after = {}
    for lig in ligands:
        same = chains == lig[0]
        pool = np.flatnonzero(same) if same.any() else np.arange(len(rows))
        i = pool[np.argmin(((xyz[pool] - np.array(lig[4:])) ** 2).sum(1))]
        if not same.any():          # its own chain: after the end of the nearest residue's chain
            while i + 1 < len(rows) and chains[i + 1] == chains[i]:
                i += 1
        after.setdefault(int(i), []).append(lig)
    out = []
    for i, row in enumerate(rows):
        out.append(row)
        out.extend(after.get(i, []))
    return out


NO_PSEUDO_ATOMS = ("the atomic model has no C-alpha atoms of amino acids nor C4' atoms of "
                   "nucleotides (one pseudo-atom per residue is placed there)")


def read_structure(path, ligands=False):
    """All models of a PDB/mmCIF file; every model must hold the same polymer residues (and, with
    ``ligands``, the same heavy ligands)."""
    st = _read_gemmi(path)
    models, left_out, n_ligands = [], None, 0
    for model in st:
        rows, skipped, found = _model_rows(model, ligands)
        models.append(rows)
        if left_out is None:
            left_out, n_ligands = skipped, found
    if not models or not models[0]:
        raise InputError(path, NO_PSEUDO_ATOMS)
    ref = [r[:3] for r in models[0]]
    for i, rows in enumerate(models[1:], start=2):
        if [r[:3] for r in rows] != ref:
            raise InputError(path, "model %d does not hold the same residues as model 1" % i)
    coords = np.array([[r[4:] for r in rows] for rows in models], dtype=np.float64)
    return Structure(coords=coords, names=[r[2] for r in models[0]], chains=[r[0] for r in models[0]],
                     numbers=np.array([r[1] for r in models[0]]),
                     electrons=np.array([r[3] for r in models[0]], dtype=np.float64), source=str(path),
                     left_out=left_out, ligands=n_ligands)


def read_trace(path, use_gemmi=None):
    """The pseudo-atoms of the first model of a PDB/mmCIF file, one per polymer residue where
    :func:`read_structure` places them (the C-alpha of an amino acid, the C4' of a nucleotide), in
    file order: ``(coords (R, 3) Å, residue numbers (R,), chain ids (R,))``; InputError when there
    are none. Other models are not read (they need not hold the same residues).

    :param use_gemmi: read with gemmi (None: when it can be imported). Without gemmi (the viewers
        run in Scipion's Python), PDB ATOM/HETATM records or the mmCIF ``_atom_site`` loop are read
        here and the same rule is applied with this module's residue tables: a residue named
        outside them counts as an amino acid when its CA atom is a carbon (modified amino acids
        such as MSE), and modified nucleotides, which only gemmi's table knows, are left out.
    """
    if use_gemmi is None:
        try:
            import gemmi  # noqa: F401
            use_gemmi = True
        except ImportError:
            use_gemmi = False
    if use_gemmi:
        st = _read_gemmi(path)
        rows = [(r[0], r[1]) + r[4:] for r in _model_rows(st[0])[0]] if len(st) else []
    else:
        rows = _text_rows(path)
    if not rows:
        raise InputError(path, NO_PSEUDO_ATOMS)
    coords = np.array([r[2:] for r in rows], dtype=np.float64)
    numbers = np.array([r[1] for r in rows], dtype=np.int64)
    chains = np.array([r[0] for r in rows])
    return coords, numbers, chains


# The reader without gemmi: atoms of the first model as (chain, number, insertion code, residue
# name, atom name, carbon, x, y, z), the number as written.
_CIF_TOKEN = re.compile(r"'(?:[^']|'(?=\S))*'|\"(?:[^\"]|\"(?=\S))*\"|\S+")


def _text_rows(path):
    """Rows ``(chain, number, x, y, z)`` of the pseudo-atoms of the first model, read without gemmi."""
    path = str(path)
    gz = path.lower().endswith(".gz")
    try:
        if gz:
            import gzip
            with gzip.open(path, "rt") as f:
                text = f.read()
        else:
            with open(path) as f:
                text = f.read()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise InputError(path, "cannot read the atomic model (%s)" % (getattr(e, "strerror", None) or e))
    head = text[:4096]
    is_cif = path.lower()[:-3 if gz else None].endswith(MMCIF_SUFFIXES) or "_atom_site." in head \
        or head.lstrip().startswith("data_")
    residues = {}
    for atom in (_cif_atoms(text) if is_cif else _pdb_atoms(text)):
        residues.setdefault(atom[:4], []).append(atom)
    rows = []
    for (chain, number, _, name), atoms in residues.items():
        atom = _text_pseudo_atom(name, atoms)
        if atom is None:
            continue
        try:
            rows.append((chain, int(number)) + atom[6:])
        except ValueError:
            raise InputError(path, "residue number %r of chain %r is not a number (gemmi reads "
                                   "hybrid-36 numbers)" % (number, chain))
    return rows


def _text_pseudo_atom(name, atoms):
    """The atom placing residue ``name`` (atoms as :func:`_pdb_atoms` gives them), or None."""
    if name in NUCLEOTIDE_ELECTRONS or name in RESIDUE_ELECTRONS:
        want = NUCLEOTIDE_ATOM if name in NUCLEOTIDE_ELECTRONS else "CA"
        return next((a for a in atoms if a[4] == want), None)
    ca = next((a for a in atoms if a[4] == "CA"), None)
    return ca if ca is not None and ca[5] else None


def _pdb_atoms(text):
    """ATOM/HETATM records up to the first ENDMDL. A blank chain id is the segment id (columns
    73-76); an atom is a carbon when its element (columns 77-78) says so, or says nothing and its
    name starts in column 14 (" CA ": C-alpha, "CA  ": calcium)."""
    for line in text.splitlines():
        rec = line[:6]
        if rec.startswith("ENDMDL"):
            break
        if rec not in ("ATOM  ", "HETATM"):
            continue
        element = line[76:78].strip().upper()
        yield (line[21].strip() or line[72:76].strip(), line[22:26].strip(), line[26:27].strip(),
               line[17:20].strip(), line[12:16].strip(),
               element == "C" or (not element and line[12:13] == " "),
               float(line[30:38]), float(line[38:46]), float(line[46:54]))


def _cif_atoms(text):
    """Atoms of the first model of an mmCIF ``_atom_site`` loop (author chain ids and numbers
    where given)."""
    lines = text.splitlines()
    i, n = 0, len(lines)
    while i < n:
        if lines[i].strip() == "loop_" and i + 1 < n and lines[i + 1].strip().startswith("_atom_site."):
            break
        i += 1
    else:
        return
    i += 1
    names = []
    while i < n and lines[i].strip().startswith("_atom_site."):
        names.append(lines[i].strip().split()[0][len("_atom_site."):])
        i += 1
    col = {name: k for k, name in enumerate(names)}

    def pick(row, *keys):
        for key in keys:
            if key in col and row[col[key]] not in (".", "?"):
                return row[col[key]]
        return ""

    model, tokens = None, []
    while i < n:
        s = lines[i].strip()
        i += 1
        if not s or s.startswith("#"):
            if tokens:
                break
            continue
        if s == "loop_" or s.startswith("_") or s.startswith("data_"):
            break
        tokens += [t[1:-1] if t[:1] in "'\"" else t for t in _CIF_TOKEN.findall(s)]
        while len(tokens) >= len(names):
            row, tokens = tokens[:len(names)], tokens[len(names):]
            m = pick(row, "pdbx_PDB_model_num")
            if model is None:
                model = m
            elif m != model:
                return
            yield (pick(row, "auth_asym_id", "label_asym_id"), pick(row, "auth_seq_id", "label_seq_id"),
                   pick(row, "pdbx_PDB_ins_code"), pick(row, "label_comp_id", "auth_comp_id"),
                   pick(row, "label_atom_id", "auth_atom_id"), pick(row, "type_symbol").upper() in ("C", ""),
                   float(row[col["Cartn_x"]]), float(row[col["Cartn_y"]]), float(row[col["Cartn_z"]]))


# What a PDB file's fixed columns hold (mmCIF has no such limits).
PDB_CHAIN_CHARS = 1             # column 22
PDB_NAME_CHARS = 3              # columns 18-20
PDB_NUMBERS = (-999, 9999)      # columns 23-26
MMCIF_SUFFIXES = (".cif", ".mmcif")


def pseudo_atom_name(residue_name):
    """The atom :func:`read_structure` reads a residue's pseudo-atom from: C4' for a nucleotide,
    CA for an amino acid, ``LIGAND_ATOM`` for anything else (a heavy ligand's centre)."""
    if residue_name in NUCLEOTIDE_ELECTRONS:
        return NUCLEOTIDE_ATOM
    if residue_name in RESIDUE_ELECTRONS:
        return "CA"
    import gemmi
    info = gemmi.find_tabulated_residue(residue_name)
    if info is not None and info.found():
        if info.is_nucleic_acid():
            return NUCLEOTIDE_ATOM
        if info.is_amino_acid():
            return "CA"
    return LIGAND_ATOM


def _chain_id(chain):
    """A residue's chain id as written; residues without one (no chain id nor segment id in their
    file) are written in chain A."""
    return str(chain).strip() or "A"


def pdb_problem(structure):
    """Why a PDB file cannot hold the residues of ``structure`` (chain ids, names and numbers as
    they are), or None when it can."""
    for c in structure.chains:
        if len(_chain_id(c)) > PDB_CHAIN_CHARS:
            return "chain id %r has %d characters, a PDB file holds %d" % (
                _chain_id(c), len(_chain_id(c)), PDB_CHAIN_CHARS)
    for name in structure.names:
        if len(name) > PDB_NAME_CHARS:
            return "residue name %r has %d characters, a PDB file holds %d" % (
                name, len(name), PDB_NAME_CHARS)
    lo, hi = PDB_NUMBERS
    for n in structure.numbers:
        if not lo <= int(n) <= hi:
            return "residue number %d is outside the %d to %d a PDB file holds" % (n, lo, hi)
    return None


def model_suffix(structure):
    """".pdb" when a PDB file holds the residues of ``structure`` unchanged, else ".cif"."""
    return ".pdb" if pdb_problem(structure) is None else ".cif"


def write_ca_model(path, structure, coords):
    """The residues of ``structure`` (``names``, ``chains``, ``numbers``) at ``coords`` (R, 3) Å,
    one pseudo-atom each (CA, or C4' for a nucleotide), as mmCIF when ``path`` ends in .cif or
    .mmcif and as PDB otherwise (:func:`write_ca_cif`, :func:`write_ca_pdb`)."""
    if str(path).lower().endswith(MMCIF_SUFFIXES):
        write_ca_cif(path, structure, coords)
    else:
        write_ca_pdb(path, structure, coords)


def write_ca_pdb(path, structure, coords):
    """A PDB file of one pseudo-atom per residue of ``structure`` at ``coords`` (R, 3) Å, with its
    chain ids, residue numbers and names unchanged (a TER record after each chain; written
    atomically). A chain id longer than one character, a residue name longer than three or a
    number outside -999 to 9999 does not fit the format's columns: InputError naming ``path``
    (mmCIF holds them: :func:`write_ca_cif`, :func:`model_suffix`)."""
    problem = pdb_problem(structure)
    if problem is not None:
        raise InputError(path, "%s: write the model as mmCIF (.cif) instead" % problem)
    lines, serial = [], 0
    chains = [_chain_id(c) for c in structure.chains]
    for i, (x, y, z) in enumerate(np.asarray(coords, dtype=np.float64)):
        serial += 1
        name, number = structure.names[i], int(structure.numbers[i])
        atom = pseudo_atom_name(name)
        lines.append("%-6s%5d %-4s %3s %1s%4d    %8.3f%8.3f%8.3f  1.00  0.00           %s"
                     % ("HETATM" if atom == LIGAND_ATOM else "ATOM", serial % 100000, " " + atom, name,
                        chains[i], number, x, y, z, atom if atom == LIGAND_ATOM else "C"))
        if i + 1 == len(chains) or chains[i + 1] != chains[i]:
            serial += 1
            lines.append("TER   %5d      %3s %1s%4d" % (serial % 100000, name, chains[i], number))
    lines.append("END")
    from .mrc import atomic_path
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_ca_cif(path, structure, coords):
    """An mmCIF file of one pseudo-atom per residue of ``structure`` at ``coords`` (R, 3) Å: chain
    ids of any length (auth_asym_id), residue numbers (auth_seq_id) and names unchanged; one
    entity per chain (written with gemmi, atomically)."""
    import gemmi
    st = gemmi.Structure()
    st.name = "flexplugin"
    model = gemmi.Model("1")
    chain = None
    for i, (x, y, z) in enumerate(np.asarray(coords, dtype=np.float64)):
        cid = _chain_id(structure.chains[i])
        if chain is None or cid != chain.name:
            if chain is not None:
                model.add_chain(chain)
            chain = gemmi.Chain(cid)
        res = gemmi.Residue()
        res.name = structure.names[i]
        res.seqid = gemmi.SeqId(int(structure.numbers[i]), " ")
        atom = gemmi.Atom()
        atom.name = pseudo_atom_name(res.name)
        res.het_flag = "H" if atom.name == LIGAND_ATOM else "A"
        atom.element = gemmi.Element(atom.name if atom.name == LIGAND_ATOM else "C")
        atom.pos = gemmi.Position(float(x), float(y), float(z))
        atom.occ = 1.0
        atom.b_iso = 0.0
        res.add_atom(atom)
        chain.add_residue(res)
    if chain is not None:
        model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    groups = gemmi.MmcifOutputGroups(True)
    groups.cell = groups.symmetry = False       # a model, not a crystal
    text = st.make_mmcif_document(groups).as_string()
    from .mrc import atomic_path
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
