"""Atomic models as they come from the PDB and from modelling programs: full-atom PDB and mmCIF
files (ligands, ions, waters, alternate locations), MD-style PDBs, nucleic acids; read as one
pseudo-atom per amino acid (at its C-alpha) or nucleotide (at its C4'); models written back as
PDB or mmCIF."""
from types import SimpleNamespace

import numpy as np
import pytest

from flexplugin.engine.errors import InputError
from flexplugin.engine.io.structure import NUCLEOTIDE_ELECTRONS, RESIDUE_ELECTRONS, read_structure

# Two residues of chain A, a calcium ion whose atom is also named "CA" (element Ca, not a
# C-alpha), and a water; the second residue's C-alpha has two alternate locations.
PDB = """\
HEADER    TEST
CRYST1   60.000   60.000   60.000  90.00  90.00  90.00 P 1           1
ATOM      1  N   MET A   1      10.000  11.000  12.000  1.00 20.00           N
ATOM      2  CA  MET A   1      11.000  11.500  12.500  1.00 20.00           C
ATOM      3  C   MET A   1      12.000  12.000  12.000  1.00 20.00           C
ATOM      4  O   MET A   1      12.500  13.000  12.000  1.00 20.00           O
ATOM      5  CB  MET A   1      11.500  10.500  13.500  1.00 20.00           C
ATOM      6  N   TRP A   2      12.500  11.000  11.000  1.00 20.00           N
ATOM      7  CA ATRP A   2      13.500  11.000  10.000  0.60 20.00           C
ATOM      8  CA BTRP A   2      13.700  11.200  10.100  0.40 20.00           C
ATOM      9  C   TRP A   2      14.500  12.000  10.500  1.00 20.00           C
TER      10      TRP A   2
HETATM   11 CA    CA A 101      20.000  20.000  20.000  1.00 30.00          CA
HETATM   12  O   HOH A 201      25.000  25.000  25.000  1.00 30.00           O
END
"""

# The same two residues as an mmCIF file as the wwPDB distributes them: label_* and auth_*
# fields (label_asym_id B, auth_asym_id A), '?' and '.' placeholders, quoted atom names.
CIF = """\
data_TEST
#
loop_
_atom_site.group_PDB
_atom_site.id
_atom_site.type_symbol
_atom_site.label_atom_id
_atom_site.label_alt_id
_atom_site.label_comp_id
_atom_site.label_asym_id
_atom_site.label_entity_id
_atom_site.label_seq_id
_atom_site.pdbx_PDB_ins_code
_atom_site.Cartn_x
_atom_site.Cartn_y
_atom_site.Cartn_z
_atom_site.occupancy
_atom_site.B_iso_or_equiv
_atom_site.auth_seq_id
_atom_site.auth_comp_id
_atom_site.auth_asym_id
_atom_site.auth_atom_id
_atom_site.pdbx_PDB_model_num
ATOM   1  N  N   . MET B 1 1 ? 10.000 11.000 12.000 1.00 20.00 1   MET A N   1
ATOM   2  C  CA  . MET B 1 1 ? 11.000 11.500 12.500 1.00 20.00 1   MET A CA  1
ATOM   3  C  C   . MET B 1 1 ? 12.000 12.000 12.000 1.00 20.00 1   MET A C   1
ATOM   4  O  O   . MET B 1 1 ? 12.500 13.000 12.000 1.00 20.00 1   MET A O   1
ATOM   5  C  CB  . MET B 1 1 ? 11.500 10.500 13.500 1.00 20.00 1   MET A CB  1
ATOM   6  N  N   . TRP B 1 2 ? 12.500 11.000 11.000 1.00 20.00 2   TRP A N   1
ATOM   7  C  CA  A TRP B 1 2 ? 13.500 11.000 10.000 0.60 20.00 2   TRP A CA  1
ATOM   8  C  CA  B TRP B 1 2 ? 13.700 11.200 10.100 0.40 20.00 2   TRP A CA  1
ATOM   9  C  C   . TRP B 1 2 ? 14.500 12.000 10.500 1.00 20.00 2   TRP A C   1
HETATM 10 CA CA  . CA  C 2 . ? 20.000 20.000 20.000 1.00 30.00 101 CA  A CA  1
HETATM 11 O  O   . HOH D 3 . ? 25.000 25.000 25.000 1.00 30.00 201 HOH A O   1
#
"""


@pytest.mark.parametrize("name,text", [("model.pdb", PDB), ("model.cif", CIF)])
def test_full_atom_models_give_one_pseudo_atom_per_residue(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    st = read_structure(path)
    assert st.names == ["MET", "TRP"]            # not the calcium ion, not the water
    assert st.chains == ["A", "A"]               # the author's chain names
    assert list(st.numbers) == [1, 2]
    assert st.coords.shape == (1, 2, 3)
    # The C-alpha of the first alternate location.
    assert np.allclose(st.coords[0], [[11.0, 11.5, 12.5], [13.5, 11.0, 10.0]])
    assert list(st.electrons) == [RESIDUE_ELECTRONS["MET"], RESIDUE_ELECTRONS["TRP"]]


def test_pdb_and_mmcif_of_one_model_agree(tmp_path):
    import gemmi
    (tmp_path / "a.pdb").write_text(PDB)
    doc = gemmi.read_structure(str(tmp_path / "a.pdb"))
    doc.setup_entities()
    doc.make_mmcif_document().write_file(str(tmp_path / "a.cif"))
    a, b = read_structure(tmp_path / "a.pdb"), read_structure(tmp_path / "a.cif")
    assert a.names == b.names and a.chains == b.chains
    assert np.allclose(a.coords, b.coords) and np.array_equal(a.electrons, b.electrons)


def test_a_model_without_amino_acids_is_refused(tmp_path):
    path = tmp_path / "ions.pdb"
    path.write_text("".join(line + "\n" for line in PDB.splitlines() if "HETATM" in line) + "END\n")
    with pytest.raises(InputError, match="ions.pdb.*no C-alpha atoms of amino acids nor C4. atoms"):
        read_structure(path)


def _md_line(serial, name, resname, resseq, xyz, segment, chain=" "):
    """A PDB ATOM line as CHARMM/NAMD/MDAnalysis write it: the name from column 13, a segment id,
    no element column."""
    return ("ATOM  %5d %-4s %3s %1s%4d    %8.3f%8.3f%8.3f%6.2f%6.2f      %-4s"
            % (serial, name, resname, chain, resseq, *xyz, 1.0, 0.0, segment))


def test_md_style_pdb_keeps_its_c_alphas_and_segments(tmp_path):
    """Names from column 13 without an element column (gemmi reads "CA" there as calcium), a
    blank chain id and the segment ids PROA / PROB: every residue kept, chains from the segments."""
    lines, serial = [], 1
    for seg, start in (("PROA", 0.0), ("PROB", 20.0)):
        for i, res in enumerate(("MET", "GLY", "LYS")):
            for name, dx in (("N", 0.0), ("CA", 1.0), ("C", 2.0), ("O", 2.5), ("HA", 1.2)):
                lines.append(_md_line(serial, name, res, i + 1, (start + 4 * i + dx, 0.0, 0.0), seg))
                serial += 1
    path = tmp_path / "md.pdb"
    path.write_text("\n".join(lines + ["END"]) + "\n")
    st = read_structure(path)
    assert st.names == ["MET", "GLY", "LYS"] * 2
    assert st.chains == ["PROA"] * 3 + ["PROB"] * 3
    assert np.allclose(st.coords[0][:, 0], [1, 5, 9, 21, 25, 29])
    assert list(st.electrons) == [RESIDUE_ELECTRONS[r] for r in ("MET", "GLY", "LYS")] * 2


def test_protein_and_rna_with_a_ligand(tmp_path):
    """Nucleotides are one pseudo-atom each at C4' (weighted by their electrons), beside the amino
    acids; the ligand and the water are left out and counted."""
    lines, serial = [], 1
    for i, res in enumerate(("ALA", "SER")):
        for name, el, dx in (("N", "N", 0.0), ("CA", "C", 1.0), ("C", "C", 2.0)):
            lines.append("ATOM  %5d  %-3s %3s A%4d    %8.3f%8.3f%8.3f  1.00  0.00          %2s"
                         % (serial, name, res, i + 1, 4 * i + dx, 0.0, 0.0, el))
            serial += 1
    for i, res in enumerate(("  G", "  U", "  A")):
        for name, el, dz in (("P", "P", 0.0), ("C4'", "C", 1.0), ("N1", "N", 2.0)):
            lines.append("ATOM  %5d  %-3s %3s R%4d    %8.3f%8.3f%8.3f  1.00  0.00          %2s"
                         % (serial, name, res, i + 1, 0.0, 6 * i, dz, el))
            serial += 1
    lines.append("HETATM%5d  C1  LIG A 301      30.000  30.000  30.000  1.00  0.00           C" % serial)
    lines.append("HETATM%5d  O1  LIG A 301      31.000  30.000  30.000  1.00  0.00           O" % (serial + 1))
    lines.append("HETATM%5d  O   HOH A 401      40.000  40.000  40.000  1.00  0.00           O" % (serial + 2))
    path = tmp_path / "protein_rna.pdb"
    path.write_text("\n".join(lines + ["END"]) + "\n")
    st = read_structure(path)
    assert st.names == ["ALA", "SER", "G", "U", "A"] and st.chains == ["A", "A", "R", "R", "R"]
    assert np.allclose(st.coords[0][2:], [[0, 0, 1], [0, 6, 1], [0, 12, 1]])
    assert list(st.electrons[2:]) == [NUCLEOTIDE_ELECTRONS[n] for n in ("G", "U", "A")]
    assert st.left_out == (3, 6 + 8 + 8)


def _protein_and_rna(chains, numbers):
    """Residues of a protein chain and an RNA chain as ``read_structure`` gives them (names,
    chains, numbers, electrons) and coordinates (R, 3) Å."""
    names = ["MET", "GLY", "TRP", "G", "U", "A"]
    electrons = [RESIDUE_ELECTRONS[n] for n in names[:3]] + [NUCLEOTIDE_ELECTRONS[n] for n in names[3:]]
    coords = np.random.default_rng(3).uniform(-80, 180, (6, 3))
    return SimpleNamespace(names=names, chains=chains, numbers=np.array(numbers),
                           electrons=np.array(electrons, dtype=float)), coords


@pytest.mark.parametrize("suffix", [".pdb", ".cif"])
def test_written_models_read_back_unchanged(tmp_path, suffix):
    """A model written as PDB or mmCIF (by the name's suffix) reads back with its residue names,
    chain ids, numbers and pseudo-atoms (CA of the amino acids, C4' of the nucleotides)."""
    from flexplugin.engine.io.structure import write_ca_model
    st, coords = _protein_and_rna(["H", "H", "H", "R", "R", "R"], [-3, 1, 9999, 1, 2, 3])
    write_ca_model(tmp_path / ("m" + suffix), st, coords)
    back = read_structure(tmp_path / ("m" + suffix))
    assert back.names == st.names and back.chains == st.chains and list(back.numbers) == list(st.numbers)
    assert np.array_equal(back.electrons, st.electrons)
    assert np.allclose(back.coords[0], coords, atol=1e-3 if suffix == ".pdb" else 1e-6)


def test_mmcif_keeps_what_a_pdb_file_cannot_hold(tmp_path):
    """Chain ids of several characters (segment ids, large assemblies) and numbers past 9999: a
    PDB file is refused with the reason, mmCIF keeps them; ``model_suffix`` picks the format."""
    from flexplugin.engine.io.structure import model_suffix, pdb_problem, write_ca_model, write_ca_pdb
    st, coords = _protein_and_rna(["PROA", "PROA", "PROA", "RNA1", "RNA1", "RNA1"], [1, 2, 10234, 5, 6, 7])
    assert model_suffix(st) == ".cif"
    with pytest.raises(InputError, match=r"m\.pdb: chain id 'PROA' has 4 characters, a PDB file holds 1: "
                                         r"write the model as mmCIF \(\.cif\) instead"):
        write_ca_pdb(tmp_path / "m.pdb", st, coords)
    assert not (tmp_path / "m.pdb").exists()
    st.chains = ["A"] * 3 + ["B"] * 3
    assert pdb_problem(st) == "residue number 10234 is outside the -999 to 9999 a PDB file holds"
    st.chains = ["PROA"] * 3 + ["RNA1"] * 3
    write_ca_model(tmp_path / "m.cif", st, coords)
    back = read_structure(tmp_path / "m.cif")
    assert back.chains == st.chains and back.names == st.names and list(back.numbers) == list(st.numbers)
    assert np.allclose(back.coords[0], coords, atol=1e-6)
    long_name = SimpleNamespace(names=["ABCD"] + st.names[1:], chains=["A"] * 6, numbers=[1] * 6)
    assert pdb_problem(long_name) == "residue name 'ABCD' has 4 characters, a PDB file holds 3"


def _model_with_ligands():
    """Chain A: three alanines along x (CA at 0, 4, 8 Å); a 12-atom ligand of chain A beside the
    first residue (written after the chain, as PDB files do), a sulfate (5 atoms), a water, and a
    12-atom ligand of its own chain L beside the last residue."""
    lines, serial = [], 1
    for i in range(3):
        for name, el, dx in (("N", "N", -1.0), ("CA", "C", 0.0), ("C", "C", 1.0)):
            lines.append("ATOM  %5d  %-3s ALA A%4d    %8.3f%8.3f%8.3f  1.00  0.00          %2s"
                         % (serial, name, i + 1, 4 * i + dx, 0.0, 0.0, el))
            serial += 1
    lines.append("TER")

    def het(res, chain, number, atoms, centre):
        nonlocal serial
        for k, (name, el) in enumerate(atoms):
            lines.append("HETATM%5d %-4s %3s %1s%4d    %8.3f%8.3f%8.3f  1.00  0.00          %2s"
                         % (serial, name, res, chain, number, centre[0] + 0.5 * (k % 3 - 1),
                            centre[1] + 0.5 * (k // 3 - 1.5), centre[2], el))
            serial += 1
    heavy = [(" C%d" % k, "C") for k in range(1, 9)] + [(" O%d" % k, "O") for k in range(1, 4)] + [(" P1", "P")]
    het("LIG", "A", 301, heavy, (0.0, 6.0, 0.0))
    het("SO4", "A", 302, [(" S", "S"), (" O1", "O"), (" O2", "O"), (" O3", "O"), (" O4", "O")], (20.0, 0, 0))
    het("HOH", "A", 401, [(" O", "O")], (30.0, 0, 0))
    het("ABC", "L", 1, heavy, (8.0, 6.0, 0.0))
    return "\n".join(lines + ["END"]) + "\n"


def test_heavy_ligands_as_pseudo_atoms_on_request(tmp_path):
    """By default ligands, ions and waters are left out and counted; with ``ligands`` a ligand of
    at least 10 non-hydrogen atoms is one pseudo-atom at its electron-weighted centre, weighted by
    its electrons, after the nearest residue of its chain (of its own chain: after the chain of
    the nearest residue), while the sulfate and the water are still left out."""
    from flexplugin.engine.io.structure import write_ca_model
    path = tmp_path / "ligands.pdb"
    path.write_text(_model_with_ligands())
    ligand_e = 8 * 6 + 3 * 8 + 15
    plain = read_structure(path)
    assert plain.names == ["ALA"] * 3 and plain.ligands == 0
    assert plain.left_out == (12 + 5 + 1 + 12, 2 * ligand_e + 16 + 32 + 8)
    st = read_structure(path, ligands=True)
    assert st.names == ["ALA", "LIG", "ALA", "ALA", "ABC"] and st.chains == ["A"] * 4 + ["L"]
    assert list(st.numbers) == [1, 301, 2, 3, 1] and st.ligands == 2
    assert list(st.electrons) == [38, ligand_e, 38, 38, ligand_e]
    w = np.array([6] * 8 + [8] * 3 + [15], dtype=float)
    x = np.array([0.5 * (k % 3 - 1) for k in range(12)])
    y = np.array([0.5 * (k // 3 - 1.5) for k in range(12)])
    assert np.allclose(st.coords[0][1], [w @ x / w.sum(), 6 + w @ y / w.sum(), 0.0])
    assert st.left_out == (5 + 1, 16 + 32 + 8)
    # decoded models write them as HETATM records of their residues
    write_ca_model(tmp_path / "out.pdb", st, st.coords[0])
    text = (tmp_path / "out.pdb").read_text().splitlines()
    assert text[1].startswith("HETATM") and " X   LIG A 301" in text[1]
    write_ca_model(tmp_path / "out.cif", st, st.coords[0])
    back = read_structure(tmp_path / "out.cif")
    assert back.names == ["ALA"] * 3 and back.left_out[0] == 2


def test_ligands_option_reaches_the_atomic_model_input(tmp_path):
    """cryoSPHERE's ``ligands`` option decides what ``load_inputs`` hands the method."""
    from flexplugin.engine.inputs import load_inputs
    from flexplugin.engine.methods.cryosphere import CryoSPHERE
    path = tmp_path / "ligands.pdb"
    path.write_text(_model_with_ligands())
    table = SimpleNamespace(box=32, apix=2.0)
    lines = []
    for on in (False, True):
        inputs, _ = load_inputs(CryoSPHERE, table, 32, atomic_model=path, log=lines.append,
                                config=CryoSPHERE.Config(ligands=on))
        assert len(inputs["atomic_model"]["names"]) == (5 if on else 3)
    assert "left out 30 atoms (230 electrons)" in lines[0]
    assert "2 heavy ligands as pseudo-atoms; left out 6 atoms (56 electrons)" in lines[1]
