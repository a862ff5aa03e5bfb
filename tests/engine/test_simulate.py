"""The simulator's three sources and its noise model."""
import json

import numpy as np

from cli_helpers import run_cli
from flexplugin.engine.io import read_mrc, read_particles, ImageSource


def _helix_pdb(path, n=60, models=((0.0, 0.0),)):
    """A C-alpha helix; each model bends the C-terminal half by (angle, shift)."""
    lines = []
    for m, (angle, shift) in enumerate(models, start=1):
        lines.append("MODEL     %4d" % m)
        for i in range(n):
            t = i * 100 / 180 * np.pi
            p = np.array([2.3 * np.cos(t), 2.3 * np.sin(t), 1.5 * i - 45.0])
            if i >= n // 2:
                c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
                p = np.array([c * p[0] + s * p[2], p[1], -s * p[0] + c * p[2]]) + [shift, 0, 0]
            lines.append("ATOM  %5d  CA  ALA A%4d    %8.3f%8.3f%8.3f  1.00  0.00           C"
                         % (i + 1, i + 1, *p))
        lines.append("ENDMDL")
    lines.append("END")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_noise_level_follows_snr(tmp_path):
    assert run_cli("simulate", "--out", tmp_path, "--n", 300, "--box", 32, "--snr", 0.5, "--states", 2) == 0
    info = json.loads((tmp_path / "simulation.json").read_text())
    assert abs(info["noise_sd"] ** 2 - info["signal_var"] / 0.5) < 1e-6 * info["signal_var"]
    table = read_particles(tmp_path / "particles.star")
    img = ImageSource(table).get(np.arange(300))
    total = img.var(axis=(1, 2)).mean()
    assert abs(total / (info["signal_var"] * (1 + 1 / 0.5)) - 1) < 0.05
    labels = np.load(tmp_path / "labels.npy")
    assert set(labels) == {0, 1} and len(labels) == 300
    a, _ = read_mrc(tmp_path / "gt_volumes" / "state_00.mrc")
    b, _ = read_mrc(tmp_path / "gt_volumes" / "state_01.mrc")
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] < 0.95    # the arm moved


def test_hidden_bfactor_blurs_with_defocus_unrecorded(tmp_path):
    """--hidden-bfactor: the same particles (seed) lose high-frequency power as their defocus rises,
    and the particle file still says B = 0."""
    common = ("--n", 200, "--box", 32, "--snr", 0, "--states", 1, "--seed", 3,
              "--defocus-min", 5000, "--defocus-max", 40000)
    assert run_cli("simulate", "--out", tmp_path / "plain", *common) == 0
    assert run_cli("simulate", "--out", tmp_path / "blur", *common, "--hidden-bfactor", 0, 400) == 0
    plain, blur = (read_particles(tmp_path / k / "particles.star") for k in ("plain", "blur"))
    assert not blur.ctf[:, 7].any()
    np.testing.assert_allclose(blur.ctf, plain.ctf)

    def high_power(table):
        f = np.fft.fftshift(np.fft.fft2(ImageSource(table).get(np.arange(200))), axes=(1, 2))
        k = np.hypot(*np.meshgrid(np.arange(32) - 16, np.arange(32) - 16))
        return (np.abs(f[:, (k > 8) & (k < 16)]) ** 2).sum(1)

    ratio = high_power(blur) / high_power(plain)
    defocus = plain.ctf[:, 0]
    assert np.all(ratio <= 1 + 1e-6)
    assert ratio[defocus < 10000].mean() > 0.6 and ratio[defocus > 35000].mean() < 0.2
    assert json.loads((tmp_path / "blur" / "simulation.json").read_text())["hidden_bfactor"] == [0, 400]


def test_volumes_source_reconstructs(tmp_path):
    """Particles projected from a given map (Fourier slices + phase-ramp shifts) reconstruct it."""
    ref = tmp_path / "ref"
    assert run_cli("simulate", "--out", ref, "--n", 10, "--box", 32, "--states", 1) == 0
    out = tmp_path / "vols"
    assert run_cli("simulate", "--out", out, "--n", 800, "--box", 32, "--snr", 1.0, "--volumes",
                   ref / "gt_volumes" / "state_00.mrc") == 0
    assert run_cli("reconstruct", "--particles", out / "particles.star", "--out", tmp_path / "m.mrc") == 0
    vol, _ = read_mrc(tmp_path / "m.mrc")
    gt, _ = read_mrc(ref / "gt_volumes" / "state_00.mrc")
    assert np.corrcoef(vol.ravel(), gt.ravel())[0, 1] > 0.95


def test_structure_source(tmp_path):
    pdb = _helix_pdb(tmp_path / "model.pdb", models=((0.0, 0.0), (40.0, 5.0)))
    out = tmp_path / "sim"
    assert run_cli("simulate", "--out", out, "--n", 200, "--box", 48, "--apix", 2.0, "--structure", pdb) == 0
    assert sorted(p.name for p in (out / "gt_volumes").iterdir()) == ["state_00.mrc", "state_01.mrc"]
    a, apix = read_mrc(out / "gt_volumes" / "state_00.mrc")
    b, _ = read_mrc(out / "gt_volumes" / "state_01.mrc")
    assert abs(apix - 2.0) < 1e-6 and a.shape == (48, 48, 48)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] < 0.9
    # a single model swings about its middle residue in --states states
    single = _helix_pdb(tmp_path / "one.pdb")
    assert run_cli("simulate", "--out", tmp_path / "one", "--n", 50, "--box", 48, "--apix", 2.0,
                   "--structure", single, "--states", 3) == 0
    assert len(list((tmp_path / "one" / "gt_volumes").iterdir())) == 3


def test_structure_without_calpha_is_refused(tmp_path, capsys):
    pdb = tmp_path / "ligand.pdb"
    pdb.write_text("HETATM    1  O   HOH A   1       1.000   2.000   3.000  1.00  0.00           O\nEND\n")
    assert run_cli("simulate", "--out", tmp_path / "x", "--n", 5, "--structure", pdb) == 2
    err = capsys.readouterr().err
    assert str(pdb) in err and "C-alpha" in err
