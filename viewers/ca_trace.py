"""C-alpha traces of atomic models (no Qt): :func:`read_ca_trace` reads the C-alpha atoms of a PDB
or mmCIF file (gemmi when importable, a small reader otherwise); :func:`ca_bonds` says which
consecutive atoms are bonded."""
import re

import numpy as np

__all__ = ["read_ca_trace", "ca_bonds"]

MAX_BOND_A = 4.5            # consecutive C-alpha atoms further apart: a chain break, no bond drawn

_CIF_TOKEN = re.compile(r"'(?:[^']|'(?=\S))*'|\"(?:[^\"]|\"(?=\S))*\"|\S+")


def _read_ca_pdb(path):
    rows, altloc = [], {}
    with open(path) as f:
        for line in f:
            rec = line[:6]
            if rec.startswith("ENDMDL"):
                break                                   # the first model only
            if rec not in ("ATOM  ", "HETATM") or line[12:16] != " CA ":
                continue                                # " CA " is C-alpha, "CA  " calcium
            element = line[76:78].strip().upper()
            if element and element != "C":
                continue
            key = (line[21], line[22:27])
            if key in altloc:                           # first alternate location only
                continue
            altloc[key] = True
            rows.append((line[21].strip(), int(line[22:26]),
                         float(line[30:38]), float(line[38:46]), float(line[46:54])))
    return rows


def _read_ca_cif(path):
    """C-alpha rows of an mmCIF ``_atom_site`` loop (first model, first alternate location)."""
    with open(path) as f:
        lines = f.read().splitlines()
    i, n = 0, len(lines)
    while i < n:
        if lines[i].strip() == "loop_" and i + 1 < n and lines[i + 1].strip().startswith("_atom_site."):
            break
        i += 1
    else:
        return []
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

    rows, seen, model = [], set(), None
    tokens = []
    while i < n:
        line = lines[i]
        i += 1
        s = line.strip()
        if not s or s.startswith("#"):
            if tokens:
                break
            continue
        if s == "loop_" or s.startswith("_") or s.startswith("data_"):
            break
        tokens += [t[1:-1] if t[:1] in "'\"" else t for t in _CIF_TOKEN.findall(line)]
        while len(tokens) >= len(names):
            row, tokens = tokens[:len(names)], tokens[len(names):]
            if pick(row, "label_atom_id", "auth_atom_id") != "CA" or pick(row, "type_symbol") not in ("C", ""):
                continue
            m = pick(row, "pdbx_PDB_model_num")
            if model is None:
                model = m
            elif m != model:
                return rows
            chain = pick(row, "auth_asym_id", "label_asym_id")
            number = int(pick(row, "auth_seq_id", "label_seq_id"))
            key = (chain, number, pick(row, "pdbx_PDB_ins_code"))
            if key in seen:
                continue
            seen.add(key)
            rows.append((chain, number, float(row[col["Cartn_x"]]), float(row[col["Cartn_y"]]),
                         float(row[col["Cartn_z"]])))
    return rows


def _read_ca_gemmi(path):
    import gemmi
    st = gemmi.read_structure(str(path))
    rows = []
    for chain in st[0]:
        for res in chain:
            ca = res.find_atom("CA", "*")
            if ca is None or ca.element.name != "C":
                continue
            rows.append((chain.name, res.seqid.num, ca.pos.x, ca.pos.y, ca.pos.z))
    return rows


def read_ca_trace(path, use_gemmi=None):
    """C-alpha atoms of the first model of a PDB or mmCIF file, in file order:
    ``(coords (R, 3) Å, residue numbers (R,), chain ids (R,))``.

    :param use_gemmi: read with gemmi (None: when it can be imported; otherwise a small reader of
        PDB ATOM/HETATM records or of the mmCIF ``_atom_site`` loop).
    """
    path = str(path)
    if use_gemmi is None:
        try:
            import gemmi  # noqa: F401
            use_gemmi = True
        except ImportError:
            use_gemmi = False
    if use_gemmi:
        rows = _read_ca_gemmi(path)
    else:
        with open(path) as f:
            head = f.read(4096)
        is_cif = path.lower().endswith((".cif", ".mmcif", ".cif.gz")) or "_atom_site." in head \
            or head.lstrip().startswith("data_")
        rows = _read_ca_cif(path) if is_cif else _read_ca_pdb(path)
    if not rows:
        raise ValueError("%s: no C-alpha atoms" % path)
    coords = np.array([r[2:] for r in rows], dtype=np.float64)
    numbers = np.array([r[1] for r in rows], dtype=np.int64)
    chains = np.array([r[0] for r in rows])
    return coords, numbers, chains


def ca_bonds(coords, chains):
    """Indices i where residues i and i + 1 are bonded (same chain, C-alpha gap <= 4.5 Å)."""
    if len(coords) < 2:
        return np.zeros(0, dtype=np.int64)
    d = np.linalg.norm(np.diff(coords, axis=0), axis=1)
    return np.flatnonzero((d <= MAX_BOND_A) & (chains[1:] == chains[:-1]))
