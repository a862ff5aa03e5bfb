#!/usr/bin/env python
"""HetACUMN's latent with given poses, rung by rung (why it learns more slowly than cryoDRGN's).

    .venv/bin/python benchmarks/hetacumn_ladder.py [--runs NAME ...] [--epochs 12] [--jobs 2]
        [--n 1500 --snr 1 --states 4 --data-seed 7 --seed 0] [--out benchmarks/out/hetacumn_ladder]
        [--force] [--table]

The set (simulated once into OUT/data with ``flexplugin simulate``): the built-in hinge, D=32,
3 Å/px, CTF, shifts, ``--states`` states, SNR ``--snr``. Every run is HetACUMN with the demo's
given-pose settings (``DEMO``: --no-ignore-poses, --fch-epochs 0, --enc-dim 16, lr 1e-3, batch 16,
the auxiliary task on), trained through ``flexplugin.engine.train.train`` as a subclass
registered in METHODS for that run only (each run is a subprocess of this script, one thread,
``--jobs`` at a time; the rung-b runs wait for the oracle):

(a) ``a_oracle``: z is the true state (2 (t - 0.5): -1 .. 1 over the states, zdim 1) plus
    ``ORACLE_JITTER`` noise in training, instead of the encoder's; the poses are refined as in
    the normal run. Reported: the data loss (mse) against the normal run's, and the correlation of
    the change between the maps decoded at the first and last states' z with the ground truth's;
(b) ``b_*``: the encoder alone (a fresh ResNet and heads) against the frozen decoder of (a):
    the ResNet as configured (width 16, 64), a cryoDRGN-like MLP on the shift-centred,
    phase-flipped Hartley image for z (diagnostic only), the ResNet with group norm for batch norm
    (diagnostic only: z independent of the batch), KL weights 0 / 1e-4 / 1e-3, lr 3e-4;
(c) ``c_*``: the normal given-pose run (encoder and decoder together), zdim 2 (the demo) and 1.

Scores (z of every particle, as ``train`` writes it, and at the ends of the epochs in
``--snapshots``): kNN accuracy of the state from z (10 neighbours, 3-fold CV), |Spearman(PC1 of z,
state)|, the map change correlation (maps decoded at each state's mean z). The batch-norm check:
z from ``encode`` (batch statistics of batches of 256) against z with the running statistics
(``model.eval()`` as a plain ResNet would be used) and with batch statistics of shuffled batches
of 16 (as in training). Prints a table and writes OUT/results.json (each run also
OUT/NAME/result.json; a run with one is not run again unless ``--force``).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

BOX, APIX = 32, 3.0
# The demo's HetACUMN as the ladder began (flexplugin/demo.py, SETTINGS["hetacumn"], since moved
# to lr 3e-4, the decoder at 1e-3 and 16 epochs: the run "c_joint_z2_centred_lr3e-4_dec1e-3" with
# --epochs 16). The runs without ``center_input`` measured the uncentred encoder input (before it
# was the default).
DEMO = dict(zdim=2, ignore_poses=False, fch_epochs=0, enc_dim=16, lr=1e-3, batch_size=16,
            center_input=False)
ORACLE_JITTER = 0.05
MLP_WIDTH, MLP_LAYERS = 128, 3           # the demo's cryoDRGN encoder width, cryoDRGN's depth
# Encoder parameters (trained in rung b); everything else (decoder, Fourier features) is frozen.
ENCODER = ("encoder.", "rot_head.", "shift_head.", "z_head.", "mlp.")
# name -> (rung, config overrides of DEMO, z encoder)
RUNS = {
    "a_oracle": ("a", dict(zdim=1), "truth"),
    "c_joint_z2": ("c", dict(), "resnet"),
    "b_resnet16": ("b", dict(zdim=1), "resnet"),
    "b_mlp": ("b", dict(zdim=1), "mlp"),
    "b_mlp_real": ("b", dict(zdim=1), "mlp_real"),
    "b_resnet64": ("b", dict(zdim=1, enc_dim=64), "resnet"),
    "b_resnet16_gn": ("b", dict(zdim=1), "resnet_gn"),
    "c_joint_z1": ("c", dict(zdim=1), "resnet"),
    "b_resnet16_kl0": ("b", dict(zdim=1, lambda_z=0.0), "resnet"),
    "b_resnet16_kl1e-3": ("b", dict(zdim=1, lambda_z=1e-3), "resnet"),
    "b_resnet16_lr3e-4": ("b", dict(zdim=1, lr=3e-4), "resnet"),
    # the encoder's input centred by the given shifts (``center_input``, the default now)
    "b_resnet16_centred": ("b", dict(zdim=1, center_input=True), "resnet"),
    "b_resnet16_centred_lr3e-4": ("b", dict(zdim=1, center_input=True, lr=3e-4), "resnet"),
    "c_joint_z2_centred": ("c", dict(center_input=True), "resnet"),
    "c_joint_z2_centred_lr3e-4": ("c", dict(center_input=True, lr=3e-4), "resnet"),
    "c_joint_z2_centred_lr1.5e-4": ("c", dict(center_input=True, lr=1.5e-4), "resnet"),
    "b_resnet16_centred_zero": ("b", dict(zdim=1, center_input=True, enc_zero_init=True), "resnet"),
    "c_joint_z2_centred_lr3e-4_zero": ("c", dict(center_input=True, lr=3e-4, enc_zero_init=True),
                                       "resnet"),
    # the decoder rendering at the given poses for the first 4 epochs / throughout
    "c_joint_z2_centred_lr3e-4_given4": ("c", dict(center_input=True, lr=3e-4, given_pose_epochs=4),
                                         "resnet"),
    "c_joint_z2_centred_lr3e-4_given12": ("c", dict(center_input=True, lr=3e-4, given_pose_epochs=12),
                                          "resnet"),
    # the KL weight at cryoDRGN's scale (beta / N_pixels = 0.5 / 804 ~ 6e-4 at D=32, zdim 2)
    "c_joint_z2_centred_lr3e-4_kl1e-3": ("c", dict(center_input=True, lr=3e-4, lambda_z=1e-3),
                                         "resnet"),
    # the decoder at lr 1e-3 (cryoDRGN's demo rate for the same decoder), the encoder at 3e-4
    "c_joint_z2_centred_lr3e-4_dec1e-3": ("c", dict(center_input=True, lr=3e-4, dec_lr_scale=10 / 3),
                                          "resnet"),
}


# -- scores -------------------------------------------------------------------------------------
def z_scores(z, labels):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from flexplugin.engine.analysis.poses import spearman_pc1
    z = np.asarray(z, dtype=np.float64)
    knn = cross_val_score(KNeighborsClassifier(10), z, labels, cv=3).mean()
    return dict(knn=float(knn), spearman=float(spearman_pc1(z, labels)))


def map_scores(model, z, labels, data):
    """Maps decoded at each state's mean z against the ground truth: the correlation of the change
    between the first and last states, and each state's map correlation (mean)."""
    import torch

    from flexplugin.engine.io import read_mrc
    states = int(labels.max()) + 1
    gt = [read_mrc(os.path.join(data, "gt_volumes", "state_%02d.mrc" % k))[0] for k in range(states)]
    with torch.no_grad():
        maps = [model.decode_volume(torch.as_tensor(z[labels == k].mean(0), dtype=torch.float32)).numpy()
                for k in range(states)]
    corr = lambda a, b: float(np.corrcoef(a.ravel(), b.ravel())[0, 1])   # noqa: E731
    return dict(change_corr=corr(maps[-1] - maps[0], gt[-1] - gt[0]),
                map_corr=float(np.mean([corr(m, g) for m, g in zip(maps, gt)])))


def dataset_of(model, data):
    from flexplugin.engine.data import ParticleDataset
    from flexplugin.engine.io import read_particles
    info = model.data_info
    return ParticleDataset(read_particles(os.path.join(data, "particles.star")), box=info.box,
                           invert=info.invert, window=info.window, scale=info.scale,
                           needs_poses=model.needs_poses)


def eval_mse(model, ds):
    """Mean image error at the encoded z and refined poses (eval mode, no sampling)."""
    import torch

    from flexplugin.engine.data import loader
    model.eval()
    errs = []
    with torch.no_grad():
        for b in loader(ds, np.arange(len(ds)), 256):
            enc = model.encode(b)
            _, fts, ctf = model._paths(b, mirror=False)
            errs.append(model._errors(fts, ctf, enc.rotations, enc.shifts_A / model.data_info.apix, enc.z))
    return float(torch.cat(errs).mean())


def bn_check(model, ds, labels, z_encode):
    """z of the same images through the ResNet with the running batch-norm statistics
    (``model.eval()``) and with batch statistics of shuffled batches of 16, against ``encode``'s."""
    import torch

    from flexplugin.engine.data import loader
    model.eval()
    rows = np.arange(len(ds))
    out = {}
    for mode, batch_stats, bs, order in (("running", False, 256, rows),
                                         ("batch16", True, 16, np.random.default_rng(0).permutation(rows))):
        z = np.zeros_like(z_encode)
        with torch.no_grad(), model._frozen_bn_stats(batch_stats=batch_stats):
            for b in loader(ds, order, bs):
                model._batch = b
                given = model._given_poses(b)
                _, _, mu, _ = model._encode(b["images"].float(), given=given)
                z[b["index"].numpy()] = mu.numpy()
        s = z_scores(z, labels)
        dz = np.sqrt(((z - z_encode) ** 2).sum(1).mean() / max(z_encode.var(0).sum(), 1e-30))
        out[mode] = dict(s, rel_rms_diff=float(dz),
                         corr=float(np.corrcoef(z[:, 0], z_encode[:, 0])[0, 1]))
    return out


# -- the methods of the rungs -------------------------------------------------------------------
def method_class(rung, encoder, data, out, snapshots, oracle_state=None):
    import torch

    from flexplugin.engine.geometry.ctf import ctf_2d
    from flexplugin.engine.geometry.fourier import fft2_center, phase_shift_2d
    from flexplugin.engine.methods.cryodrgn import ResidualMLP, _image_lattice
    from flexplugin.engine.methods.hetacumn import HetACUMN
    from flexplugin.engine.train import encode_dataset

    labels = np.load(os.path.join(data, "labels.npy"))
    truth = torch.as_tensor(2 * (np.load(os.path.join(data, "z_true.npy")) - 0.5), dtype=torch.float32)

    class Ladder(HetACUMN):
        """Remembers the batch (for the z paths below) and scores z at the snapshot epochs."""
        name = "hetacumn_ladder"

        def training_step(self, batch):
            self._batch = batch
            return super().training_step(batch)

        def encode(self, batch):
            self._batch = batch
            return super().encode(batch)

        def start_epoch(self, epoch, epochs=0):
            if epoch - 1 in snapshots:
                if not hasattr(self, "_ds"):
                    self._ds, self.snaps = dataset_of(self, data), {}
                z = encode_dataset(self, self._ds)["z"]
                self.snaps[epoch - 1] = z_scores(z, labels)
                with open(os.path.join(out, "snapshots.json"), "w") as f:
                    json.dump(self.snaps, f)
                self.train()
            super().start_epoch(epoch, epochs)

    base = Ladder
    if encoder == "truth":
        class Oracle(Ladder):
            def _encode(self, x, with_z=True, given=None):
                rot, shift, mu, logvar = super()._encode(x, with_z, given)
                if mu is None:
                    return rot, shift, mu, logvar
                z = torch.zeros_like(mu)
                z[:, 0] = truth[self._batch["index"].long()]
                return rot, shift, z, torch.full_like(z, 2 * np.log(ORACLE_JITTER))
        base = Oracle
    elif encoder in ("mlp", "mlp_real"):
        class MLP(Ladder):
            """z from an MLP on the centred, phase-flipped Hartley image (cryoDRGN's input), or
            ("mlp_real") on the real-space image as the ResNet sees it (not centred, CTF as is)."""
            def __init__(self, config, data_info, inputs=None):
                super().__init__(config, data_info, inputs)
                circle = _image_lattice(data_info.box)[2]
                self.register_buffer("circle_idx", circle, persistent=False)
                self.mlp = ResidualMLP(len(circle), MLP_WIDTH, MLP_LAYERS, 2 * config.zdim)

            def _encode(self, x, with_z=True, given=None):
                rot, shift, _, _ = super()._encode(x, False, given)
                if not with_z:
                    return rot, shift, None, None
                b = self._batch
                assert len(x) == len(b["images"])
                img = b["images"].float()
                if encoder == "mlp_real":
                    out = self.mlp(img.flatten(1)[:, self.circle_idx]).float()
                    return rot, shift, out[:, :self.zdim], out[:, self.zdim:]
                f = phase_shift_2d(fft2_center(img), b["shifts_px"].float())
                y = ((f.real - f.imag) / img.shape[-1]).flatten(1)
                if "ctf" in b:
                    y = y * torch.sign(ctf_2d(img.shape[-1], self.data_info.apix, b["ctf"]).flatten(1))
                out = self.mlp(y[:, self.circle_idx]).float()
                return rot, shift, out[:, :self.zdim], out[:, self.zdim:]
        base = MLP
    elif encoder == "resnet_gn":
        class GroupNormResNet(Ladder):
            """The ResNet with group norm (8 groups) for batch norm: z independent of the batch."""
            def __init__(self, config, data_info, inputs=None):
                super().__init__(config, data_info, inputs)
                for mod in list(self.encoder.modules()):
                    for key, child in list(mod.named_children()):
                        if isinstance(child, torch.nn.BatchNorm2d):
                            c = child.num_features
                            setattr(mod, key, torch.nn.GroupNorm(min(8, c), c))
        base = GroupNormResNet

    if rung != "b":
        return base

    class EncoderOnly(base):
        def initialise(self, dataset, rows, epochs, log=print):
            super().initialise(dataset, rows, epochs, log)
            state = torch.load(oracle_state)
            missing = [k for k in state if not k.startswith(ENCODER)]
            self.load_state_dict({k: state[k] for k in missing}, strict=False)
            for k, p in self.named_parameters():
                p.requires_grad_(k.startswith(ENCODER))
    return EncoderOnly


def worker(name, a):
    import torch

    from flexplugin.engine.methods import METHODS
    from flexplugin.engine.train import train
    rung, overrides, encoder = RUNS[name]
    data, out = os.path.join(a.out, "data"), os.path.join(a.out, name)
    oracle_state = os.path.join(a.out, "a_oracle", "oracle_state.pt")
    cls = method_class(rung, encoder, data, out, set(a.snapshots), oracle_state)
    cfg = dict(DEMO, **overrides)
    t0 = time.time()
    METHODS[cls.name] = cls
    try:
        model = train(cls.name, os.path.join(data, "particles.star"), out, a.epochs, config=cfg,
                      seed=a.seed, threads=1, log_every=0)
    finally:
        METHODS.pop(cls.name)
    seconds = time.time() - t0
    if rung == "a":
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, oracle_state)
    if rung == "b":                    # the decoder stayed as the oracle left it
        state = torch.load(oracle_state)
        assert all(torch.equal(p, state[k]) for k, p in model.named_parameters() if not k.startswith(ENCODER))
    labels = np.load(os.path.join(data, "labels.npy"))
    z = np.load(os.path.join(out, "z.npy"))
    history = json.load(open(os.path.join(out, "metrics.json")))["epochs"]
    ds = dataset_of(model, data)
    r = dict(run=name, rung=rung, encoder=encoder, config=cfg, epochs=a.epochs, seconds=round(seconds),
             train_mse=history[-1]["mse"], train_mse_curve=[h["mse"] for h in history],
             kl=history[-1].get("kl"), eval_mse=eval_mse(model, ds), **z_scores(z, labels),
             **map_scores(model, z, labels, data),
             snapshots={int(k): v for k, v in getattr(model, "snaps", {}).items()},
             z_std=[float(v) for v in z.std(0)])
    r["snapshots"][a.epochs] = z_scores(z, labels)
    if encoder == "resnet":
        r["bn"] = bn_check(model, ds, labels, z)
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(r, f, indent=1)
    print("%s done in %d s: kNN %.3f |Spearman| %.3f" % (name, seconds, r["knn"], r["spearman"]), flush=True)


# -- driver -------------------------------------------------------------------------------------
def simulate(a):
    data = os.path.join(a.out, "data")
    if not os.path.exists(os.path.join(data, "labels.npy")):
        subprocess.run([sys.executable, "-m", "flexplugin.engine.cli", "simulate", "--out", data,
                        "--n", str(a.n), "--box", str(BOX), "--apix", str(APIX), "--snr", str(a.snr),
                        "--seed", str(a.data_seed), "--states", str(a.states)], check=True, cwd=ROOT)
    return data


def start(name, a):
    """The worker process of run ``name`` (its output in OUT/NAME/log.txt)."""
    os.makedirs(os.path.join(a.out, name), exist_ok=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--out", a.out,
           "--epochs", str(a.epochs), "--seed", str(a.seed), "--snapshots", *map(str, a.snapshots)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    log = open(os.path.join(a.out, name, "log.txt"), "w")
    print("%s: started" % name, flush=True)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def schedule(runs, a):
    """Run ``runs`` in order, ``a.jobs`` at a time; a rung-b run waits for the oracle."""
    oracle = os.path.join(a.out, "a_oracle", "oracle_state.pt")
    todo = [r for r in runs if a.force or not os.path.exists(os.path.join(a.out, r, "result.json"))]
    running = {}
    while todo or running:
        for name, p in list(running.items()):
            if p.poll() is not None:
                del running[name]
                print("%s: %s" % (name, "done" if p.returncode == 0 else "FAILED (see %s)"
                                  % os.path.join(a.out, name, "log.txt")), flush=True)
                if name == "a_oracle" and p.returncode:
                    todo = [r for r in todo if RUNS[r][0] != "b"]
        ready = [r for r in todo if RUNS[r][0] != "b" or ("a_oracle" not in running and "a_oracle" not in todo
                                                       and os.path.exists(oracle))]
        while ready and len(running) < a.jobs:
            name = ready.pop(0)
            todo.remove(name)
            running[name] = start(name, a)
        time.sleep(2)


def table(a):
    rows = []
    for name in RUNS:
        path = os.path.join(a.out, name, "result.json")
        if os.path.exists(path):
            rows.append(json.load(open(path)))
        elif os.path.exists(os.path.join(a.out, name, "snapshots.json")):      # stopped early
            rows.append(dict(run=name, rung=RUNS[name][0], stopped=True,
                             snapshots=json.load(open(os.path.join(a.out, name, "snapshots.json")))))
    snaps = sorted({int(k) for r in rows for k in r["snapshots"]})
    print("\n%-19s %5s %9s %9s %7s %7s %7s %7s %6s | %s | %s" % (
        "run", "rung", "train_mse", "eval_mse", "kNN", "|rho|", "chg_r", "map_r", "sec",
        " ".join("ep%-2d kNN/|rho|" % s for s in snaps), "BN: running kNN/|rho| (rel diff); batch16"))
    for r in rows:
        sn = " ".join(("%.2f/%.2f    " % (r["snapshots"][str(s)]["knn"], r["snapshots"][str(s)]["spearman"])
                       if str(s) in r["snapshots"] else " " * 13) for s in snaps)
        bn = ""
        if "bn" in r:
            bn = "%.2f/%.2f (%.2f); %.2f/%.2f (%.2f)" % (
                r["bn"]["running"]["knn"], r["bn"]["running"]["spearman"], r["bn"]["running"]["rel_rms_diff"],
                r["bn"]["batch16"]["knn"], r["bn"]["batch16"]["spearman"], r["bn"]["batch16"]["rel_rms_diff"])
        if r.get("stopped"):
            print("%-19s %5s %s | %s | stopped early" % (r["run"], r["rung"], " " * 59, sn))
            continue
        print("%-19s %5s %9.5f %9.5f %7.3f %7.3f %7.3f %7.3f %6d | %s | %s" % (
            r["run"], r["rung"], r["train_mse"], r["eval_mse"], r["knn"], r["spearman"], r["change_corr"],
            r["map_corr"], r["seconds"], sn, bn))
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--snapshots", type=int, nargs="*", default=[1, 2, 4, 8],
                    help="also score z after these epochs")
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--snr", type=float, default=1.0)
    ap.add_argument("--states", type=int, default=4)
    ap.add_argument("--data-seed", type=int, default=7, help="the simulation's seed")
    ap.add_argument("--seed", type=int, default=0, help="the training runs' seed")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    ap.add_argument("--force", action="store_true", help="run again runs that have a result")
    ap.add_argument("--table", action="store_true", help="only print the table of the results so far")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "hetacumn_ladder"))
    a = ap.parse_args(argv)
    a.out = os.path.abspath(a.out)
    if a.worker:
        return worker(a.worker, a)
    if a.table:
        return table(a)
    os.makedirs(a.out, exist_ok=True)
    simulate(a)
    runs = list(a.runs)
    if (any(RUNS[r][0] == "b" for r in runs) and "a_oracle" not in runs
            and not os.path.exists(os.path.join(a.out, "a_oracle", "oracle_state.pt"))):
        runs.insert(0, "a_oracle")
    schedule(runs, a)
    table(a)


if __name__ == "__main__":
    main()
