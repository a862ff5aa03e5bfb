"""HetSIREN science on small simulated sets (D=32, 1500 particles, CTF, shifts): a homogeneous
map, a 1D motion, a focus mask and pose refinement. Learning rate 3e-4 and batch 16 (the
method's 1e-4 / 8 takes twice the steps), one CPU thread. The latent's ladder (oracle decoder,
encoder alone) is in test_hetsiren_ladder.py."""
import dataclasses

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from cli_helpers import run_cli, simulate_hinge, train_z
from flexplugin.engine.analysis.poses import pc1
from flexplugin.engine.geometry import so3
from flexplugin.engine.io import read_mrc, read_particles
from flexplugin.engine.io.star import write_star
from flexplugin.engine.methods import load_method
from flexplugin.engine.train import dataset_for, encode_dataset

COMMON = ["--lr", 3e-4, "--batch-size", 16, "--threads", 1, "--log-every", 0]

# Thresholds (measured values in the comments; a broken model fails each one).
# Homogeneous (SNR 0.1), zdim 0, lr 3e-3, 3 epochs: correlation with the ground truth 0.961 (0.952
# with the half-resolution term in every epoch; 0.906
# before the consensus started from the reconstruction); the same map against the axis-transposed
# ground truth (a transposed convention) 0.279.
HOMOGENEOUS_CORR_MIN = 0.8
# 1D motion (5 states of the built-in hinge, SNR 1), zdim 4, 8 epochs: |Spearman| 0.939 / 0.931,
# k-means ARI 0.480 / 0.502 (0.939 / 0.934 and 0.519 / 0.510 with the half-resolution term in every
# epoch) (seed 0 in bfloat16 on a CPU with AMX, seed 1 in float32; z in the
# decoded maps' metric; 0.951 / 0.935 and 0.577 / 0.498 in the encoder's own z); our cryoDRGN
# on the same data, zdim and epochs: 0.851 / 0.26. Before the consensus started from the
# reconstruction 0.47, with the published omega0 30 0.002 (benchmarks/RESULTS.md).
MOTION_EPOCHS = 8
MOTION_ARGS = ["--zdim", 4]
MOTION_SPEARMAN_MIN = 0.85
MOTION_ARI_MIN = 0.3
# Focus (mask around the arm, reference = reconstruct's consensus map), same budget: outside the
# mask the decoded maps equal the reference up to float rounding (measured below 1e-6 of its
# maximum; the issue asks < 1%; before the voxels outside the decoded sphere were filled with the
# reference it was 0.0088); inside they change between the ends of PC1 (0.368 of the reference's
# maximum, 0.419 with the reference envelope, 0.254 with the half-resolution term for the first
# half of the epochs, the default; a decoder ignoring z gives 0). |Spearman| 0.915 (0.916 with the
# term in every epoch)
# (0.901 in the encoder's own z; 0.911 with the envelope; 0.933 measured on an earlier engine; 0.571 with the published focus weight
# 100, 0.153 before the other fixes; a latent that does not organise gives ~0.03).
FOCUS_OUTSIDE_MAX = 1e-3
FOCUS_CHANGE_MIN = 0.1
FOCUS_SPEARMAN_MIN = 0.8
# Pose refinement from rotations perturbed by 5 degrees, zdim 0, 4 epochs at lr 3e-3, the default
# local Gauss-Newton refinement against the decoded map, in training after 2 warm-up epochs and when
# encoding: median angular error 5.0 -> 2.76 degrees (2.83 with the half-resolution term in every
# epoch; 0.57 of the input; 2.92 refined when encoding
# only; 3.56 before the consensus started from the reconstruction; the ground-truth map: 2.62,
# benchmarks/hetsiren_pose_oracle.py). A model that does not refine keeps 5.0
# (1.0); the encoder's pose heads trained from the first epoch (the previous default) gave 10.0
# (2.0).
PERTURB_DEG = 5.0
POSE_EPOCHS = 4
POSE_ARGS = ["--lr", 3e-3]
POSE_GAIN_MAX = 0.7


def _train(data, out, epochs, *extra, star="particles.star"):
    return train_z("hetsiren", data, out, epochs, *COMMON, *extra, star=star)


def test_homogeneous_map_matches_ground_truth(homogeneous_set, tmp_path):
    z = _train(homogeneous_set, tmp_path, 3, "--zdim", 0, "--lr", 3e-3)
    assert z.shape == (1500, 0)
    vol, apix = read_mrc(tmp_path / "consensus.mrc")
    gt, _ = read_mrc(homogeneous_set / "gt_volumes" / "state_00.mrc")
    corr = np.corrcoef(vol.ravel(), gt.ravel())[0, 1]
    corr_t = np.corrcoef(vol.ravel(), gt.transpose(2, 1, 0).ravel())[0, 1]
    print("homogeneous: correlation %.3f (transposed GT %.3f), std ratio %.2f"
          % (corr, corr_t, vol.std() / gt.std()))
    assert vol.shape == (32, 32, 32) and abs(apix - 3.0) < 1e-5
    assert corr > HOMOGENEOUS_CORR_MIN and corr_t < HOMOGENEOUS_CORR_MIN
    # The scale of reconstruct.py's maps (and of the ground truth).
    assert 0.6 < vol.std() / gt.std() < 1.6


@pytest.mark.parametrize("seed,precision", [(0, "auto"), (1, "fp32")])
def test_motion_latent_orders_states(motion_set, tmp_path, seed, precision):
    z = _train(motion_set, tmp_path, MOTION_EPOCHS, *MOTION_ARGS, "--seed", seed,
               "--precision", precision)
    r = abs(spearmanr(pc1(z), np.load(motion_set / "z_true.npy")).correlation)
    labels = np.load(motion_set / "labels.npy")
    ari = adjusted_rand_score(labels, KMeans(5, n_init=4, random_state=0).fit_predict(z))
    print("1D motion (seed %d, %s): |Spearman(PC1 z, state)| = %.3f, k-means ARI %.3f"
          % (seed, precision, r, ari))
    assert r > MOTION_SPEARMAN_MIN
    assert ari > MOTION_ARI_MIN
    # The checkpoint holds the latent's gauge: it encodes the particles to the z written.
    model = load_method(tmp_path / "checkpoint.pt")
    again = encode_dataset(model, dataset_for(model, motion_set / "particles.star"))["z"]
    assert np.abs(again - z).max() < 1e-3 * np.abs(z).max()


def test_latent_gauge_shrinks_what_the_decoder_ignores(motion_set):
    """``settle`` re-expresses z so that equal steps change the decoded map equally: a direction
    the decoder ignores, spread 10x wider than the one it uses, no longer leads the principal
    components (before: |Spearman(PC1, state)| ~0), and the maps decoded at the new z are the
    maps of the old."""
    from flexplugin.engine.methods import DataInfo
    from flexplugin.engine.methods.hetsiren import HetSIREN

    class IgnoresSecond(HetSIREN):
        def _delta(self, z):
            return super()._delta(z * torch.tensor([1.0, 0.0]))

    torch.manual_seed(0)
    model = IgnoresSecond(HetSIREN.Config(zdim=2), DataInfo(box=32, apix=3.0)).eval()
    rng = np.random.default_rng(0)
    t = np.load(motion_set / "z_true.npy")
    z = np.stack([t + 0.05 * rng.normal(size=len(t)), 10 * rng.normal(size=len(t))], 1)
    z = z.astype(np.float32)
    before = abs(spearmanr(pc1(z), t).correlation)
    logs = []
    new = model.settle(z, log=logs.append)
    after = abs(spearmanr(pc1(new), t).correlation)
    print("gauge: |Spearman(PC1, state)| %.3f -> %.3f; %s" % (before, after, logs[0]))
    assert before < 0.2 and after > 0.95
    assert abs(new[:, 0].std() - 1) < 1e-3 and new[:, 1].std() < 0.05    # measured 0.028
    for i in (0, 7):
        assert torch.allclose(model.decode_volume(torch.as_tensor(new[i])),
                              model._grid(model._volume(torch.as_tensor(z[i:i + 1])))[0], atol=1e-5)
    assert np.allclose(model._to_user(torch.as_tensor(z[:5])).numpy(), new[:5], atol=1e-4)


def test_half_resolution_term_follows_its_schedule():
    """``multires_until``: the half-resolution comparison is part of the training loss for that
    fraction of the run's epochs and not after; outside training (and without ``multires``) as
    configured."""
    from flexplugin.engine.methods import DataInfo
    from flexplugin.engine.methods.hetsiren import HetSIREN
    g = torch.Generator().manual_seed(0)
    pred, img = torch.randn(2, 32, 32, generator=g), torch.randn(2, 32, 32, generator=g)
    full = float(((pred - img) ** 2).mean())
    losses = []
    for multires, until, epoch in ((True, 0.5, 2), (True, 0.5, 3), (True, 1.0, 4), (False, 1.0, 1)):
        m = HetSIREN(HetSIREN.Config(zdim=0, multires=multires, multires_until=until),
                     DataInfo(box=32, apix=3.0))
        m.start_epoch(epoch, 4)
        losses.append(float(m._data_loss(pred, img)))
        if multires:
            assert float(m.eval()._data_loss(pred, img)) > full * 1.1
    assert losses[0] > full * 1.1 and losses[2] == losses[0]
    assert losses[1] == pytest.approx(full) and losses[3] == pytest.approx(full)


def test_focus_mask_keeps_reference_outside(motion_set, tmp_path):
    ref = tmp_path / "ref.mrc"
    assert run_cli("reconstruct", "--particles", motion_set / "particles.star", "--out", ref) == 0
    # A sphere around the swinging arm of the built-in object (centre and reach of its atoms over
    # the states, in Å from the box centre).
    mask = tmp_path / "mask.mrc"
    assert run_cli("mask", "--out", mask, "--sphere", "--box", 32, "--apix", 3.0,
                   "--center", "10.8,8.6,-1.1", "--radius", 16, "--soft", 6) == 0
    out = tmp_path / "train"
    z = _train(motion_set, out, MOTION_EPOCHS, *MOTION_ARGS, "--mask", mask, "--reference", ref)
    r = abs(spearmanr(pc1(z), np.load(motion_set / "z_true.npy")).correlation)
    model = load_method(out / "checkpoint.pt")
    m, _ = read_mrc(mask)
    v0, _ = read_mrc(ref)
    pc = pc1(z)
    ends = [z[np.argmin(pc)], z[np.argmax(pc)]]
    maps = [model.decode_volume(torch.as_tensor(p)).numpy() for p in ends]
    outside = m == 0
    dev = max(np.abs(v[outside] - v0[outside]).max() for v in maps) / np.abs(v0).max()
    inside = m >= 0.5
    change = np.abs(maps[1] - maps[0])[inside].max() / np.abs(v0).max()
    print("focus: |Spearman| %.3f, outside the mask max |map - reference| = %.2g of max|ref|, "
          "change inside between the PC1 ends %.3f of max|ref|" % (r, dev, change))
    assert dev < FOCUS_OUTSIDE_MAX
    assert change > FOCUS_CHANGE_MIN
    assert r > FOCUS_SPEARMAN_MIN


def test_reference_envelope_undoes_a_reference_filter(motion_set):
    """ref_envelope: with the middle state's true map as the reference, the fitted envelope is ~1
    at low resolution; with that map halved and low-passed by a Gaussian g(k), ~2 / g(k) wherever
    it is fitted (a reference filtered or scaled otherwise than the data projects as the data)."""
    from flexplugin.engine.data import ParticleDataset
    from flexplugin.engine.geometry.fourier import freqs_1d
    from flexplugin.engine.methods.base import DataInfo
    from flexplugin.engine.methods.hetsiren import HetSIREN
    table = read_particles(motion_set / "particles.star")
    data = ParticleDataset(table, needs_poses=True)
    info = DataInfo(box=32, apix=3.0, scale=data.estimate_scale())
    truth = torch.as_tensor(read_mrc(motion_set / "gt_volumes" / "state_02.mrc")[0])
    k = freqs_1d(32)
    k2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2
    gauss = torch.exp(-k2 / (2 * 0.12 ** 2))            # 1/e^0.5 at 0.12 cycles/px (25 Å)
    ft = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(truth)))
    filtered = 0.5 * torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(ft * gauss))).real
    rows = np.arange(600)
    shells = [1, 2, 3, 4, 5, 6]                          # radius in Fourier pixels (96 Å .. 16 Å)
    env = {}
    for name, ref in (("truth", truth), ("filtered", filtered)):
        m = HetSIREN(HetSIREN.Config(zdim=0, ref_envelope=True), info, {"reference": ref.float()})
        m.initialise(data, rows, 1, log=print)
        p = m.envelope.shape[-1]                         # padded grid: shell s at radius 2 s
        env[name] = np.array([float(m.envelope[p // 2, p // 2 + 2 * s]) for s in shells])
    expect = 2 / np.exp(-(np.array(shells) / 32) ** 2 / (2 * 0.12 ** 2))
    print("envelope of the truth %s; of the filtered map %s (expected %s)"
          % (np.round(env["truth"], 2), np.round(env["filtered"], 2), np.round(expect, 2)))
    assert np.all(np.abs(env["truth"][:4] - 1) < 0.15)
    assert np.all(np.abs(env["filtered"] / expect - 1) < 0.2)


@pytest.fixture(scope="module")
def perturbed_set(tmp_path_factory):
    """One state, SNR 1, input rotations perturbed by 5 degrees about random axes."""
    out = simulate_hinge(tmp_path_factory.mktemp("poses"), seed=6)
    table = read_particles(out / "particles.star")
    rng = np.random.default_rng(7)
    axes = rng.normal(size=(len(table), 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    delta = so3.axis_angle_to_matrix(axes * np.deg2rad(PERTURB_DEG))
    write_star(out / "perturbed.star", dataclasses.replace(table, rotations=delta @ table.rotations))
    return out


def test_pose_refinement_improves_perturbed_poses(perturbed_set, tmp_path):
    _train(perturbed_set, tmp_path, POSE_EPOCHS, "--zdim", 0, "--refine-poses", *POSE_ARGS,
           star="perturbed.star")
    true = read_particles(perturbed_set / "particles.star").rotations
    before = np.median(so3.rotation_angle_deg(
        read_particles(perturbed_set / "perturbed.star").rotations, true))
    after = np.median(so3.rotation_angle_deg(np.load(tmp_path / "rotations.npy"), true))
    print("pose refinement: median angular error %.2f -> %.2f degrees" % (before, after))
    assert abs(before - PERTURB_DEG) < 0.1
    assert after < POSE_GAIN_MAX * before
