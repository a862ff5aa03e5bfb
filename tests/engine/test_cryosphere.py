"""cryoSPHERE on a small synthetic two-domain atomic model (100 C-alpha residues, two compact
domains of 50), simulated by ``flexplugin simulate --structure`` as a hinge motion of the second
domain (5 states, 0 to 60 degrees; D=32, 3 Å/px, 1500 particles, SNR 0.1, CTF, shifts, known
poses), trained once with a small architecture, lr 1e-3 (1e-2 for the segmentation, the paper's
ratio) and batch 32 for 12 epochs on one CPU thread (the paper's 3e-5 / 128 need far more epochs
than a test can afford). K = 3 segments, so that the initial segmentation (boundaries at residues
33 and 67) differs from the true one (50)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from cli_helpers import run_cli
from flexplugin.synthetic import two_domain_chain, write_pdb
from flexplugin.engine.analysis.structures import rmsd, segment_match
from flexplugin.engine.inputs import load_inputs
from flexplugin.engine.io import read_mrc, read_particles
from flexplugin.engine.io.structure import read_structure
from flexplugin.engine.methods import DataInfo, load_method
from flexplugin.engine.methods.cryosphere import CryoSPHERE, _inv_elu1

BOX, APIX = 32, 3.0
TRAIN = ["--zdim", 2, "--segments", 3, "--enc-dim", 128, "--enc-layers", 2, "--dec-dim", 128,
         "--dec-layers", 1, "--lr", 1e-3, "--lr-segments", 1e-2, "--batch-size", 32, "--kl-warmup", 5,
         "--kl-cycle", 0, "--threads", 1, "--log-every", 0]

# Thresholds (measured values in the comments; a broken model fails each one).
# Residues whose hard segment's majority domain is their true domain: measured 0.98 (segments of
# 47, 5 and 48 residues: the middle one shrinks and the boundary moves to residue 50; 0.99-1.00
# with 10-20 epochs); the initial segmentation (one that does not learn) gives 0.83.
SEGMENT_MATCH_MIN = 0.92
# |Spearman(PC1 of z, state)|: measured 0.89; a z that carries no information gives ~0.
SPEARMAN_MIN = 0.75
# C-alpha RMSD (Å) of the structure decoded at each state's median z against that state, for the
# states that moved (15, 30, 45, 60 degrees; the undeformed input model is 2.14, 4.24, 6.27,
# 8.19 Å away): measured 0.78, 1.59, 2.45, 3.39 (the ends shrink towards the middle at this
# SNR), i.e. at most 0.41 of the undeformed model's RMSD; a decoder that does not move gives 1.0.
STATE_RMSD_RATIO_MAX = 0.6
# Median over particles of the RMSD between the structure decoded at the particle's z and its
# state: measured 1.80 Å (the undeformed model: 4.24 Å).
PARTICLE_RMSD_MAX = 2.5


@pytest.fixture(scope="module")
def hinge_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("cryosphere_hinge")
    # Anywhere in space: the simulator centres it in the box and writes it so as gt_model.pdb.
    pdb = write_pdb(out / "input.pdb", two_domain_chain() + [10.0, -5.0, 20.0])
    assert run_cli("simulate", "--out", out / "sim", "--n", 1500, "--box", BOX, "--apix", APIX,
                   "--snr", 0.1, "--seed", 5, "--structure", pdb, "--states", 5) == 0
    return out / "sim"


@pytest.fixture(scope="module")
def trained(hinge_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("cryosphere_train")
    assert run_cli("train", "cryosphere", "--particles", hinge_set / "particles.star", "--structure",
                   hinge_set / "gt_model.pdb", "--out", out, "--epochs", 12, *TRAIN) == 0
    return out


def _fresh(sim, zdim=0, **config):
    table = read_particles(sim / "particles.star")
    inputs, paths = load_inputs(CryoSPHERE, table, BOX, atomic_model=sim / "gt_model.pdb")
    return CryoSPHERE(CryoSPHERE.Config(zdim=zdim, **config), DataInfo(box=BOX, apix=APIX, **paths), inputs)


def test_model_frame_matches_the_simulator(hinge_set):
    """gt_model.pdb is the simulated particle placed in a map of origin 0 (box centre at
    D//2 * apix Å): the undeformed model renders the simulator's state-0 map; the same model
    centred on the origin (not fitted into the box) is refused."""
    model = _fresh(hinge_set)
    gt, _ = read_mrc(hinge_set / "gt_volumes" / "state_00.mrc")
    vol = model.decode_volume(torch.zeros(0)).numpy()
    assert np.abs(vol - gt).max() < 1e-3 * gt.max()
    st = read_structure(hinge_set / "gt_model.pdb")
    assert np.allclose(st.coords[0].mean(0), BOX // 2 * APIX, atol=1e-3)
    assert np.allclose(model.decode_structure(torch.zeros(0)).numpy(), st.coords[0], atol=1e-3)
    inputs = dict(model.inputs["atomic_model"])
    inputs["coords"] = inputs["coords"] - inputs["coords"].mean(0)
    with pytest.raises(ValueError, match="fit the model"):
        CryoSPHERE(model.config, model.data_info, {"atomic_model": inputs})


def test_segment_moves_as_a_rigid_body(hinge_set):
    """A rotation of one segment (quaternion (1, tan(theta/2) u)) rotates its residues by theta
    about the box centre and leaves the others in place; W rows sum to 1."""
    model = _fresh(hinge_set, segments=2, tau=0.01)
    w = model.segmentation()[0].detach()
    assert torch.allclose(w.sum(-1), torch.ones(len(w)))
    with torch.no_grad():
        model.transform.zero_()
        model.transform[9:12] = torch.tensor([0.0, 0.0, np.tan(np.deg2rad(15))])   # segment 1, 30° about z
    x0 = model.base.numpy()
    x = model.decode_structure(torch.zeros(0)).numpy() - model.centre_A
    rz = np.array([[np.cos(np.pi / 6), -np.sin(np.pi / 6), 0], [np.sin(np.pi / 6), np.cos(np.pi / 6), 0], [0, 0, 1]])
    hard = w.max(-1).values.numpy() > 1 - 1e-6
    label = w.argmax(-1).numpy()
    assert hard.sum() > 80
    assert np.allclose(x[hard & (label == 1)], x0[hard & (label == 1)] @ rz.T, atol=1e-3)
    assert np.allclose(x[hard & (label == 0)], x0[hard & (label == 0)], atol=1e-4)


def test_segmentation_matches_the_domains(hinge_set, trained):
    model = load_method(trained / "checkpoint.pt")
    seg = model.segments().numpy()
    truth = np.load(hinge_set / "gt_segments.npy")
    match = segment_match(seg, truth)
    print("segments %s, residues matching the domains %.3f" % (np.bincount(seg, minlength=3), match))
    assert match >= SEGMENT_MATCH_MIN


def test_latent_orders_the_hinge_states(hinge_set, trained):
    z = np.load(trained / "z.npy")
    zc = z - z.mean(0)
    pc1 = zc @ np.linalg.svd(zc, full_matrices=False)[2][0]
    r = abs(spearmanr(pc1, np.load(hinge_set / "z_true.npy")).correlation)
    print("|Spearman(PC1 z, state)| = %.3f" % r)
    assert r > SPEARMAN_MIN


def test_decoded_structures_match_the_states(hinge_set, trained, tmp_path):
    model = load_method(trained / "checkpoint.pt")
    z = np.load(trained / "z.npy")
    labels = np.load(hinge_set / "labels.npy")
    states = np.load(hinge_set / "gt_structures.npy")          # (5, R, 3) Å, gt_model.pdb's frame

    medians = np.stack([np.median(z[labels == s], axis=0) for s in range(len(states))])
    for s in range(1, len(states)):
        got = rmsd(model.decode_structure(torch.as_tensor(medians[s])).numpy(), states[s])
        base = rmsd(states[0], states[s])
        print("state %d: RMSD %.2f Å at its median z, undeformed model %.2f Å" % (s, got, base))
        assert got < STATE_RMSD_RATIO_MAX * base
    per_particle = rmsd(model.decode_structure(torch.as_tensor(z)).numpy(), states[labels])
    print("median per-particle RMSD %.2f Å (undeformed %.2f Å)"
          % (np.median(per_particle), np.median(rmsd(states[0], states[labels]))))
    assert np.median(per_particle) < PARTICLE_RMSD_MAX

    # decode writes the model beside each map, in the input model's frame.
    np.savetxt(tmp_path / "z.txt", medians)
    assert run_cli("decode", "--model", trained, "--z-file", tmp_path / "z.txt", "--out", tmp_path / "dec") == 0
    st = read_structure(tmp_path / "dec" / "vol_004.pdb")
    ref = read_structure(hinge_set / "gt_model.pdb")
    assert st.names == ref.names and (st.numbers == ref.numbers).all()
    assert np.allclose(st.coords[0], model.decode_structure(torch.as_tensor(medians[4])).numpy(), atol=2e-3)
    vol, apix = read_mrc(tmp_path / "dec" / "vol_004.mrc")
    gt, _ = read_mrc(hinge_set / "gt_volumes" / "state_04.mrc")
    assert vol.shape == (BOX,) * 3 and abs(apix - APIX) < 1e-5 and 0.5 < vol.std() / gt.std() < 2


def test_continuity_and_clash_losses(hinge_set):
    """Both optional terms are zero for the input model and grow when residues are pushed together."""
    model = _fresh(hinge_set, zdim=2, continuity_weight=0.1, clash_weight=0.1)
    base = model.base[None]
    assert float(model.continuity_loss(base)) < 1e-8 and float(model.clash_loss(base)) == 0
    squeezed = base * 0.8
    assert float(model.continuity_loss(squeezed)) > 0.1 and float(model.clash_loss(squeezed)) > 0.1
    from flexplugin.engine.data import ParticleDataset
    batch = ParticleDataset(read_particles(hinge_set / "particles.star"))[np.arange(8)]
    out = model.training_step(batch)
    assert torch.isfinite(out["loss"]) and "continuity" in out and "clash" in out


def test_result_files_describe_the_motion(hinge_set, trained):
    """segments.txt and segment_motions.npz: the segment that moves most turns with the state."""
    model = load_method(trained / "checkpoint.pt")
    seg = np.loadtxt(trained / "segments.txt", dtype=int, ndmin=2)
    assert (seg[:, 1] == model.segments().numpy() + 1).all()
    motions = np.load(trained / "segment_motions.npz")
    angle = motions["angle_deg"]
    assert angle.shape == (1500, model.config.segments) and motions["translation_A"].shape == (1500, model.config.segments, 3)
    moving = angle.std(0).argmax()
    r = abs(spearmanr(angle[:, moving], np.load(hinge_set / "z_true.npy")).correlation)
    print("|Spearman(angle of the most moving segment, state)| = %.3f" % r)
    assert r > SPEARMAN_MIN


# -- chains -------------------------------------------------------------------------------------
def _chains_pdb(path, lengths, ids, segment_ids=False):
    """A C-alpha PDB of chains of ``lengths`` residues (numbered from 1 in each chain) named
    ``ids``: in the chain column, or, with ``segment_ids``, as CHARMM/NAMD segment ids with a blank
    chain column. The chains follow one another along x, inside the box (0 to BOX * APIX Å)."""
    lines, serial, x = [], 0, 10.0
    for length, cid in zip(lengths, ids):
        for n in range(1, length + 1):
            serial += 1
            y, z = 48 + 3.0 * np.cos(n), 48 + 3.0 * np.sin(n)
            lines.append("ATOM  %5d  CA  %3s %1s%4d    %8.3f%8.3f%8.3f  1.00  0.00      %-4s  C"
                         % (serial, "ALA", " " if segment_ids else cid, n, x, y, z,
                            cid if segment_ids else ""))
            x += 1.5
        lines.append("TER")
    path.write_text("\n".join(lines + ["END"]) + "\n")
    return path


def _atomic_model(path, **config):
    inputs, paths = load_inputs(CryoSPHERE, SimpleNamespace(box=BOX, apix=APIX), BOX, atomic_model=path)
    return CryoSPHERE(CryoSPHERE.Config(zdim=0, **config), DataInfo(box=BOX, apix=APIX, **paths), inputs)


def _set_mixture(model, mu, sigma, logits=None):
    """The mixture's posterior means at ``mu``, ``sigma`` (K,) and ``logits`` (K,, default 0)."""
    k = len(mu)
    logits = torch.zeros(k) if logits is None else torch.as_tensor(logits, dtype=torch.float32)
    raw_sigma = _inv_elu1(torch.as_tensor(sigma, dtype=torch.float32))
    with torch.no_grad():
        model.seg_mean.copy_(torch.stack([torch.as_tensor(mu, dtype=torch.float32), raw_sigma, logits])
                             / model.seg_scale)


def _joined_breaks(labels, chains):
    """Chain breaks (index of the first residue of the next chain) whose two residues have one hard
    label while the two chains are not both wholly in that segment."""
    labels, chains = np.asarray(labels), np.asarray(chains)
    bad = []
    for b in np.flatnonzero(chains[1:] != chains[:-1]) + 1:
        both = (chains == chains[b - 1]) | (chains == chains[b])
        if labels[b] == labels[b - 1] and not (labels[both] == labels[b]).all():
            bad.append(int(b))
    return bad


def test_segments_never_run_across_a_chain_break(tmp_path):
    """Chains A (60 residues) and B (40), K = 3: with a segment's mean on the chain boundary, the
    index axis of the file (the same model without chain ids) puts the end of A and the start of B
    in one segment; with the chains, no placement of the means, widths and proportions does, and a
    residue has no weight on another chain's segments."""
    path = _chains_pdb(tmp_path / "two_chains.pdb", (60, 40), ("A", "B"))
    model = _atomic_model(path, segments=3)
    chains = np.array(model.inputs["atomic_model"]["chains"])
    assert list(chains) == ["A"] * 60 + ["B"] * 40
    assert model.parts == [(0, 60, 2), (60, 100, 1)]
    am = {k: v for k, v in model.inputs["atomic_model"].items() if k != "chains"}
    one_axis = CryoSPHERE(model.config, model.data_info, {"atomic_model": am})
    assert one_axis.parts == [(0, 100, 3)]

    # One mean on the boundary (between residues 59 and 60), the others inside the chains.
    for m in (model, one_axis):
        _set_mixture(m, [20.0, 59.5, 85.0], [10.0, 10.0, 10.0])
    assert _joined_breaks(one_axis.segments().numpy(), chains) == [60]
    assert _joined_breaks(model.segments().numpy(), chains) == []

    # Any means, widths and proportions: every mean on the boundary, wide and narrow Gaussians.
    rng = np.random.default_rng(0)
    trials = [([59.5] * 3, [10.0] * 3, [0.0, 0.0, 0.0]), ([59.5] * 3, [200.0, 1.0, 1.0], [3.0, 0.0, 0.0])]
    trials += [(rng.uniform(-20, 120, 3), np.exp(rng.uniform(-1, 5, 3)), rng.normal(0, 2, 3))
               for _ in range(50)]
    for mu, sigma, logits in trials:
        _set_mixture(model, mu, sigma, logits)
        assert _joined_breaks(model.segments().numpy(), chains) == [], (mu, sigma, logits)
        w = model.segmentation()[0].detach()
        assert torch.allclose(w.sum(-1), torch.ones(100))
        assert (w[:60, 2] == 0).all() and (w[60:, :2] == 0).all()


def test_more_chains_than_segments_keep_chains_whole(tmp_path):
    """Five chains, K = 3: adjacent chains with the fewest residues share one segment and move as
    a whole; no segment holds part of a chain and part of another."""
    lengths, ids = (30, 4, 5, 25, 6), ("A", "B", "C", "D", "E")
    model = _atomic_model(_chains_pdb(tmp_path / "five.pdb", lengths, ids), segments=3)
    assert model.parts == [(0, 30, 1), (30, 39, 1), (39, 70, 1)]   # A | B + C | D + E
    chains = np.array(model.inputs["atomic_model"]["chains"])
    rng = np.random.default_rng(1)
    for _ in range(20):
        _set_mixture(model, rng.uniform(0, 70, 3), np.exp(rng.uniform(-1, 4, 3)), rng.normal(0, 2, 3))
        labels = model.segments().numpy()
        assert _joined_breaks(labels, chains) == []
        assert [len(set(labels[b:e])) for b, e, _ in model.parts] == [1, 1, 1]


def test_chains_travel_with_the_model(tmp_path):
    """Chain ids and residue names are saved in the checkpoint; a checkpoint without them (written
    before they were) loads as one chain. decode writes the input's chain ids, numbers and names:
    a PDB file for one-character chain ids, mmCIF for longer ones (CHARMM segment ids)."""
    for ids, segment_ids, suffix in ((("A", "B"), False, ".pdb"), (("PROA", "PROB"), True, ".cif")):
        path = _chains_pdb(tmp_path / ("in_%s.pdb" % ids[0]), (12, 10), ids, segment_ids=segment_ids)
        model = _atomic_model(path, segments=4)
        assert model.parts == [(0, 12, 2), (12, 22, 2)]
        torch.save(model.checkpoint(), tmp_path / "checkpoint.pt")
        loaded = load_method(tmp_path / "checkpoint.pt")
        assert loaded.parts == model.parts
        assert loaded.inputs["atomic_model"]["chains"] == [ids[0]] * 12 + [ids[1]] * 10
        assert torch.equal(loaded.segmentation(), model.segmentation())
        out = tmp_path / ("dec_" + ids[0])
        assert run_cli("decode", "--model", tmp_path / "checkpoint.pt", "--out", out) == 0
        assert {p.name for p in out.iterdir()} == {"vol_000" + suffix, "vol_000.mrc"}
        st, ref = read_structure(out / ("vol_000" + suffix)), read_structure(path)
        assert st.chains == ref.chains and st.names == ref.names and (st.numbers == ref.numbers).all()
        assert np.allclose(st.coords, ref.coords, atol=1e-3)

    ck = model.checkpoint()
    ck["inputs"]["atomic_model"] = {k: v for k, v in ck["inputs"]["atomic_model"].items()
                                    if k not in ("chains", "names")}
    old = CryoSPHERE.from_checkpoint(ck)
    assert old.parts == [(0, 22, 4)]


def test_protein_and_rna_hinge(tmp_path):
    """A protein chain A with an RNA chain B (50 nucleotides, one C4' pseudo-atom each) that
    hinges: the segmentation puts the RNA in its own segments and the latent orders the states.
    Measured (1000 particles, 8 epochs): segmentation 1.000, |Spearman| 0.952 (the benchmark,
    3000 particles, 20 epochs: 1.000 and 0.948)."""
    chain = two_domain_chain()
    pdb = write_pdb(tmp_path / "protein_rna.pdb", chain, rna_from=len(chain) // 2)
    st = read_structure(pdb)
    assert st.chains == ["A"] * 50 + ["B"] * 50 and st.names[50:54] == ["C", "U", "A", "G"]
    assert run_cli("simulate", "--out", tmp_path / "sim", "--n", 1000, "--box", BOX, "--apix", APIX,
                   "--snr", 0.1, "--seed", 6, "--structure", pdb, "--states", 5) == 0
    out = tmp_path / "train"
    assert run_cli("train", "cryosphere", "--particles", tmp_path / "sim" / "particles.star",
                   "--structure", tmp_path / "sim" / "gt_model.pdb", "--out", out, "--epochs", 8,
                   *TRAIN) == 0
    model = load_method(out / "checkpoint.pt")
    match = segment_match(model.segments().numpy(), np.load(tmp_path / "sim" / "gt_segments.npy"))
    z = np.load(out / "z.npy")
    zc = z - z.mean(0)
    r = abs(spearmanr(zc @ np.linalg.svd(zc, full_matrices=False)[2][0],
                      np.load(tmp_path / "sim" / "z_true.npy")).correlation)
    print("protein + RNA: segmentation %.3f, |Spearman| %.3f" % (match, r))
    assert match >= SEGMENT_MATCH_MIN
    assert r > SPEARMAN_MIN
