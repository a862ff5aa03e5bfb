"""Bad inputs at the command line: each ends with exit status 2 and one line ``error: <file or
option>: <problem>``, never a traceback. One table, one row per fault (the reader-level tests
with more detail are in test_io_*.py and test_check.py; the messages are listed in
docs/errors.md)."""
import re

import mrcfile
import numpy as np
import pytest
import torch

from cli_helpers import run_cli
from flexplugin.engine.geometry import so3
from flexplugin.engine.io import write_cs, write_mrc, write_star
from flexplugin.engine.io.table import ParticleTable

BOX, APIX, N = 8, 4.0, 30
TINY = ["--zdim", 1, "--enc-dim", 8, "--enc-layers", 1, "--dec-dim", 8, "--dec-layers", 1, "--batch-size", 10,
        "--threads", 1, "--log-every", 0, "--precision", "fp32"]


def _stack(path, n, box=BOX):
    data = np.random.default_rng(n).normal(size=(n, box, box)).astype(np.float32)
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(data)
        m.set_image_stack()
        m.voxel_size = APIX
    return str(path)


def _table(d, poses=True, ctf=True):
    stacks = [_stack(d / "a.mrcs", 20), _stack(d / "b.mrcs", 10)]
    sid = (np.arange(N) >= 20).astype(int)
    rng = np.random.default_rng(0)
    return ParticleTable(stacks=stacks, stack_id=sid, index=np.where(sid == 0, np.arange(N), np.arange(N) - 20),
                         apix=APIX, box=BOX, rotations=so3.random_rotations(N, rng) if poses else None,
                         shifts_A=rng.normal(size=(N, 2)) if poses else None,
                         ctf=np.column_stack([np.full((N, 2), 15000.0), np.zeros(N), np.full((N, 3), [300, 2.7, 0.1]),
                                              np.zeros((N, 2))]) if ctf else None,
                         optics_group=np.ones(N, int))


def _star(d, **kw):
    path = d / "particles.star"
    write_star(path, _table(d, **kw))
    return path


def _train(particles, *extra, method="cryodrgn", out="out"):
    return ["train", method, "--particles", particles, "--out", particles.parent / out, "--epochs", 1,
            *TINY, *extra]


def _edit(path, old, new, count=1):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, count))
    return path


def _pdb(path, atom="CA", x=16.0):
    with open(path, "w") as f:
        for i in range(6):
            f.write("ATOM  %5d  %-3s ALA A%4d    %8.3f%8.3f%8.3f  1.00  0.00           C\n"
                    % (i + 1, atom, i + 1, x + 2.0 * i, 16.0, 16.0))
    return path


# ---------------------------------------------------------------------------------- the faults
# Each builds its broken input in folder d and returns (command line, the name the message must
# start with, a regular expression the problem must match).

def truncated_mrc(d):
    star = _star(d)
    with open(d / "a.mrcs", "r+b") as f:
        f.truncate(2000)
    return _train(star), d / "a.mrcs", r"truncated: the header announces 20 images"


def wrong_mode_mrc(d):
    star = _star(d)
    with open(d / "b.mrcs", "r+b") as f:
        f.seek(12)
        f.write(np.array([4], "<i4").tobytes())
    return ["check", star], d / "b.mrcs", r"unsupported MRC mode 4"


def not_an_mrc(d):
    star = _star(d)
    (d / "a.mrcs").write_bytes(b"hello")
    return _train(star), d / "a.mrcs", r"not an MRC file"


def star_missing_image_name(d):
    star = _edit(_star(d), "_rlnImageName #1", "_rlnMicrographName #1")
    return ["check", star], star, r"missing column rlnImageName"


def star_missing_ctf_column(d):
    star = _edit(_star(d), "_rlnVoltage", "_rlnSomethingElse")
    return _train(star), star, r"missing column rlnVoltage"


def star_unknown_optics_group(d):
    star = _star(d)
    text = star.read_text().splitlines()
    last = text[-1] if text[-1].strip() else text[-2]
    star.write_text(star.read_text().replace(last, last.rsplit(" ", 1)[0] + " 7"))
    return _train(star), star, r"rlnOpticsGroup 7 \(particle 30\) is not in data_optics"


def star_not_a_number(d):
    star = _edit(_star(d), " 15000.0 ", " fifteen ")
    return _train(star), star, r"column rlnDefocusU: 'fifteen' \(row 1\) is not a number"


def cs_missing_field(d):
    t = _table(d)
    path = d / "particles.cs"
    write_cs(path, t)
    arr = np.load(path)
    keep = [n for n in arr.dtype.names if n != "blob/psize_A"]
    np.save(path.with_suffix(".npy"), arr[keep])
    (d / "particles.npy").rename(path)
    return _train(path), path, r"missing field blob/psize_A"


def cs_not_a_cs(d):
    path = d / "particles.cs"
    path.write_bytes(b"\x93NUMPY garbage")
    return ["check", path], path, r"not a cryoSPARC \.cs file"


def unknown_particle_file_type(d):
    path = d / "particles.txt"
    path.write_text("x")
    return _train(path), path, r"unknown particle file type"


def missing_particle_file(d):
    return _train(d / "nothing.star"), d / "nothing.star", r"file not found"


def missing_stack(d):
    star = _star(d)
    (d / "b.mrcs").unlink()
    return _train(star), star, r"image stack 'b\.mrcs' not found"


def stacks_of_different_boxes(d):
    star = _star(d)
    _stack(d / "b.mrcs", 10, box=10)
    return _train(star), d / "b.mrcs", r"image size 10 x 10 differs from the 8 px images of .*a\.mrcs"


def index_out_of_range_check(d):
    star = _star(d)
    _stack(d / "b.mrcs", 7)
    return ["check", star, "--no-scan"], d / "b.mrcs", r"image 8 requested by particle 28"


def index_out_of_range_train(d):
    star = _star(d)
    _stack(d / "b.mrcs", 7)
    return _train(star), d / "b.mrcs", r"image 8 requested \(1-based\) but the stack holds 7 images"


def bad_image_number(d):
    star = _edit(_star(d), "000001@", "000000@")
    return _train(star), star, r"rlnImageName '000000@a\.mrcs' \(particle 1\): bad image number"


def nan_image_check(d):
    star = _star(d)
    with mrcfile.open(str(d / "b.mrcs"), "r+") as m:
        m.data[3, 2, 2] = np.nan
    return ["check", star], d / "b.mrcs", r"image 4 \(particle 24 of .*\) contains NaN or inf"


def nan_image_train(d):
    star = _star(d)
    with mrcfile.open(str(d / "b.mrcs"), "r+") as m:
        m.data[3, 2, 2] = np.inf
    return _train(star), d / "b.mrcs", r"image 4 \(particle 24 of .*\) contains NaN or inf"


def non_finite_ctf(d):
    star = _edit(_star(d), " 15000.0 ", " nan ")
    return ["check", star], star, r"particle 1: CTF is not finite"


def missing_poses(d):
    star = _star(d, poses=False)
    return _train(star), star, r"the particles have no poses"


def zero_particles(d):
    star = _star(d)
    text = star.read_text()
    star.write_text(text[:text.index("000001@")])
    return _train(star), star, r"zero particles"


def mask_of_another_box(d):
    star = _star(d)
    write_mrc(d / "mask.mrc", np.ones((BOX + 2,) * 3, np.float32), APIX)
    return (_train(star, "--mask", d / "mask.mrc", method="hetsiren"), d / "mask.mrc",
            r"the mask is 10 voxels across, the particles are 8 pixels")


def mask_of_another_pixel_size(d):
    star = _star(d)
    write_mrc(d / "mask.mrc", np.ones((BOX,) * 3, np.float32), APIX * 1.5)
    return (_train(star, "--mask", d / "mask.mrc", method="hetsiren"), d / "mask.mrc",
            r"the mask has 6\.0000 Å voxels, the particles 4\.0000 Å pixels")


def empty_mask(d):
    star = _star(d)
    write_mrc(d / "mask.mrc", np.zeros((BOX,) * 3, np.float32), APIX)
    return _train(star, "--mask", d / "mask.mrc", method="hetsiren"), d / "mask.mrc", r"the mask is empty"


def reference_of_another_box(d):
    star = _star(d)
    write_mrc(d / "ref.mrc", np.ones((BOX // 2,) * 3, np.float32), APIX)
    return (_train(star, "--reference", d / "ref.mrc", method="hetsiren"), d / "ref.mrc",
            r"the reference map is 4 voxels across")


def reference_of_another_pixel_size(d):
    star = _star(d)
    write_mrc(d / "ref.mrc", np.ones((BOX,) * 3, np.float32), APIX * 2)
    return (_train(star, "--reference", d / "ref.mrc", method="hetsiren"), d / "ref.mrc",
            r"the reference map has 8\.0000 Å voxels, the particles 4\.0000 Å pixels")


def reference_not_a_volume(d):
    star = _star(d)
    write_mrc(d / "ref.mrc", np.ones((BOX, BOX), np.float32), APIX)
    return (_train(star, "--reference", d / "ref.mrc", method="hetsiren"), d / "ref.mrc",
            r"the reference map must be a cubic 3D map")


def model_without_c_alpha(d):
    star = _star(d)
    pdb = _pdb(d / "model.pdb", atom="N")
    return (_train(star, "--structure", pdb, "--segments", 1, method="cryosphere"), pdb,
            r"the atomic model has no C-alpha atoms of amino acids")


def model_unreadable(d):
    star = _star(d)
    (d / "model.cif").write_text("data_x\nloop_\n_atom_site.id\n")
    return (_train(star, "--structure", d / "model.cif", "--segments", 1, method="cryosphere"),
            d / "model.cif", r"has no C-alpha atoms|cannot read the atomic model")


def model_outside_the_box(d):
    star = _star(d)
    pdb = _pdb(d / "model.pdb", x=500.0)
    return (_train(star, "--structure", pdb, "--segments", 1, method="cryosphere"), "train cryosphere",
            r"lies outside the particles' box .*fit the model")


def negative_zdim(d):
    return _train(_star(d), "--zdim", -1), "--zdim", r"must be 0 or more \(got -1\); 0 trains a homogeneous map"


def zero_epochs(d):
    return _train(_star(d), "--epochs", 0), "--epochs", r"must be at least 1"


def odd_box(d):
    return _train(_star(d), "--box", 5), "--box", r"must be even and at most the image size 8 \(got 5\)"


def zero_batch(d):
    return _train(_star(d), "--batch-size", 0), "--batch-size", r"must be at least 1"


def bad_precision(d):
    return _train(_star(d), "--precision", "fp8"), "--precision", r"must be auto, fp32 or bf16"


def gpu_that_is_not_there(d):
    # a CUDA device beyond those of the machine (any machine: this torch may have none)
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return (_train(_star(d), "--device", "cuda:%d" % (n + 7)), "--device",
            r"cuda:\d+ was asked for, but (this torch .* without CUDA|no CUDA device|this machine has)")


def not_a_device(d):
    return _train(_star(d), "--device", "gpu"), "--device", r"'gpu' is not a device"


def bad_method_option(d):
    return (_train(_star(d), "--loss", "huber", method="hetsiren"), "train hetsiren",
            r"--loss must be mse or corr")


def passthrough_with_a_star(d):
    star = _star(d)
    return _train(star, "--passthrough", d / "p.cs"), d / "p.cs", r"a passthrough file only goes with"


def damaged_checkpoint_on_resume(d):
    star = _star(d)
    (d / "out").mkdir()
    (d / "out" / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a checkpoint")
    return _train(star, "--resume"), d / "out" / "checkpoint.pt", r"cannot read the training checkpoint"


def checkpoint_of_another_method(d):
    star = _star(d)
    assert run_cli(*_train(star)) == 0
    return (_train(star, "--resume", method="hetsiren"), d / "out" / "checkpoint.pt",
            r"holds a cryodrgn model, not hetsiren")


def resume_with_fewer_particles(d):
    star = _star(d)
    assert run_cli(*_train(star)) == 0
    text = star.read_text()
    star.write_text(text[:text.index("000001@b.mrcs")])
    return _train(star, "--resume"), star, r"holds 20 particles, but the checkpoint .* resume with the same"


def damaged_model(d):
    (d / "model.pt").write_bytes(b"not a checkpoint")
    return ["decode", "--model", d / "model.pt", "--z", "0", "--out", d / "maps"], d / "model.pt", \
        r"cannot read the model checkpoint \(damaged, or not written by flexplugin\)"


def missing_model(d):
    return (["encode", "--model", d / "nowhere", "--particles", _star(d), "--out", d / "z.npy"],
            d / "nowhere", r"file not found")


def latent_points_of_another_size(d):
    star = _star(d)
    assert run_cli(*_train(star)) == 0
    return ["decode", "--model", d / "out", "--z", "1,2,3", "--out", d / "maps"], "--z", \
        r"latent points have 3 values, the model's zdim is 1"


def latent_file_with_pickle(d):
    star = _star(d)
    assert run_cli(*_train(star)) == 0
    np.save(d / "z.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return ["analyze", "--model", d / "out", "--z", d / "z.npy", "--out", d / "an"], d / "z.npy", \
        r"cannot read latent points"


FAULTS = [truncated_mrc, wrong_mode_mrc, not_an_mrc, star_missing_image_name, star_missing_ctf_column,
          star_unknown_optics_group, star_not_a_number, cs_missing_field, cs_not_a_cs,
          unknown_particle_file_type, missing_particle_file, missing_stack, stacks_of_different_boxes,
          index_out_of_range_check, index_out_of_range_train, bad_image_number, nan_image_check,
          nan_image_train, non_finite_ctf, missing_poses, zero_particles, mask_of_another_box,
          mask_of_another_pixel_size, empty_mask, reference_of_another_box,
          reference_of_another_pixel_size, reference_not_a_volume,
          model_without_c_alpha, model_unreadable, model_outside_the_box, negative_zdim, zero_epochs,
          odd_box, zero_batch, bad_precision, gpu_that_is_not_there, not_a_device, bad_method_option, passthrough_with_a_star,
          damaged_checkpoint_on_resume, checkpoint_of_another_method, resume_with_fewer_particles,
          damaged_model, missing_model, latent_points_of_another_size, latent_file_with_pickle]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.__name__ for f in FAULTS])
def test_bad_input_gives_one_clear_line(fault, tmp_path, capfd):
    torch.set_num_threads(1)
    args, name, problem = fault(tmp_path)
    capfd.readouterr()
    code = run_cli(*args)
    err = capfd.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    message = lines[0][len("error: "):]
    name = str(name)
    assert message.startswith(name + ": "), (name, message)
    assert re.search(problem, message[len(name) + 2:]), message


@pytest.mark.parametrize("zdim", [0, 1])
def test_zdim_zero_is_a_homogeneous_model(zdim, tmp_path):
    """zdim 0 is valid for every method (a homogeneous map; z.npy has no columns)."""
    star = _star(tmp_path)
    assert run_cli(*_train(star, "--zdim", zdim)) == 0
    assert np.load(tmp_path / "out" / "z.npy").shape == (N, zdim)


def test_training_without_ctf_says_so(tmp_path, capfd):
    star = _star(tmp_path, ctf=False)
    assert run_cli(*_train(star)) == 0
    assert "has no CTF parameters" in capfd.readouterr().out
