#!/usr/bin/env python
"""Homogeneous reconstruction: ours vs `cryodrgn backproject_voxel` on the same particles.

    .venv/bin/python benchmarks/reconstruct_vs_cryodrgn.py [--n 5000 --box 64 --snr 0.1 --seed 0
                                                            --out benchmarks/out/recon]

1. simulates a homogeneous particle set (one state) with our simulator: OUT/data/particles.star
   (RELION 3.1), particles.mrcs and the ground truth gt_volumes/state_00.mrc;
2. reconstructs it with ours (`flexplugin.engine.cli reconstruct`) -> OUT/ours/map.mrc;
3. reconstructs it with cryodrgn 4.3.1 (an external peer program in its own venv, built by
   benchmarks/setup_peer.sh; none of its code is part of this project):
   `parse_pose_star` + `parse_ctf_star` + `backproject_voxel` -> OUT/cryodrgn/backproject.mrc;
4. computes each map's FSC with the ground truth and the resolutions at FSC 0.5 and 0.143;
5. prints a table and writes OUT/results.json.

Sign conventions. Our star images have the protein bright with a CTF that is positive at low
frequency (RELION's). cryodrgn's CTF is the negative of RELION's, and backproject_voxel inverts the
data by default (no --uninvert-data), so it sees (-image) = CTF_cryodrgn * projection and
produces a map with the protein positive, like ours. We call it with its defaults.

A diagnostic also correlates each map with the ground truth under the 48 signed axis permutations
(a negative sign, a mirrored hand or swapped axes would show up as a better match than the
identity) and looks for a global offset with a cross-correlation peak.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from itertools import permutations, product

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from flexplugin.engine.analysis.fsc import fsc, resolution_at  # noqa: E402
from flexplugin.engine.io.mrc import read_mrc  # noqa: E402


def run(cmd, log_path, env=None):
    """Run ``cmd`` (list) from the repository root, tee-less: output to ``log_path``. Returns
    (seconds, output text). Raises with the log's tail on failure."""
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    t0 = time.time()
    with open(log_path, "w") as log:
        p = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    dt = time.time() - t0
    with open(log_path) as f:
        text = f.read()
    if p.returncode != 0:
        sys.stderr.write(text[-4000:])
        raise SystemExit("command failed (rc %d, log %s): %s" % (p.returncode, log_path, " ".join(cmd)))
    return dt, text


def star_labels(path):
    """All `_rln...` labels that appear in a star file's headers."""
    labels = set()
    with open(path) as f:
        for line in f:
            s = line.strip()
            if s.startswith("_rln"):
                labels.add(s.split()[0])
    return labels


def simulate(args, data_dir, py):
    sim_json = os.path.join(data_dir, "simulation.json")
    if args.reuse_data and os.path.exists(sim_json):
        with open(sim_json) as f:
            s = json.load(f)
        if (s.get("n"), s.get("box"), s.get("snr"), s.get("seed"), s.get("states")) == \
                (args.n, args.box, args.snr, args.seed, 1) and abs(s.get("apix", 0) - args.apix) < 1e-6:
            print("reusing %s" % data_dir)
            return None
    cmd = [py, "-m", "flexplugin.engine.cli", "simulate", "--out", data_dir, "--n", str(args.n),
           "--box", str(args.box), "--apix", str(args.apix), "--snr", str(args.snr),
           "--seed", str(args.seed), "--states", "1"]
    dt, _ = run(cmd, os.path.join(args.out, "simulate.log"))
    return dt


def run_ours(args, star, py, sub="ours", extra=()):
    out_dir = os.path.join(args.out, sub)
    os.makedirs(out_dir, exist_ok=True)
    cmd = [py, "-m", "flexplugin.engine.cli", "reconstruct", "--particles", star,
           "--out", os.path.join(out_dir, "map.mrc")] + list(extra)
    dt, _ = run(cmd, os.path.join(out_dir, "reconstruct.log"))
    return dict(map=os.path.join(out_dir, "map.mrc"), seconds=dt, commands=[cmd])


def prepare_peer(peer_venv, out_dir, star, data_dir, box, apix, env=None):
    """Build the peer venv (setup_peer.sh) and convert the star's poses and CTF for cryodrgn.

    Returns (cryodrgn executable, poses.pkl, ctf.pkl, seconds, commands)."""
    peer_venv = os.path.abspath(peer_venv)
    env = dict(env or os.environ, PEER_VENV=peer_venv)
    os.makedirs(out_dir, exist_ok=True)
    run(["bash", os.path.join(HERE, "setup_peer.sh")], os.path.join(out_dir, "setup_peer.log"), env=env)
    exe = os.path.join(peer_venv, "bin", "cryodrgn")
    poses, ctf = os.path.join(out_dir, "poses.pkl"), os.path.join(out_dir, "ctf.pkl")
    # Optics values cryodrgn would otherwise miss are passed from the simulation's record.
    with open(os.path.join(data_dir, "simulation.json")) as f:
        sim = json.load(f)
    labels = star_labels(star)
    ctf_extra = []
    for label, flag, value in (("_rlnVoltage", "--kv", sim.get("voltage")),
                               ("_rlnSphericalAberration", "--cs", sim.get("cs")),
                               ("_rlnAmplitudeContrast", "-w", sim.get("amp_contrast")),
                               ("_rlnPhaseShift", "--ps", 0.0)):
        if label not in labels:
            ctf_extra += [flag, str(value)]
    common = ["-D", str(box), "--Apix", str(apix)]
    cmds = [[exe, "parse_pose_star", star, "-o", poses] + common,
            [exe, "parse_ctf_star", star, "-o", ctf] + common + ctf_extra]
    seconds = sum(run(cmd, os.path.join(out_dir, cmd[1] + ".log"), env=env)[0] for cmd in cmds)
    return exe, poses, ctf, seconds, cmds


def run_cryodrgn(args, star, data_dir):
    out_dir = os.path.join(args.out, "cryodrgn")
    exe, poses, ctf, total, cmds = prepare_peer(args.peer_venv, out_dir, star, data_dir, args.box, args.apix)
    cmd = [exe, "backproject_voxel", star, "--poses", poses, "--ctf", ctf, "--datadir", data_dir,
           "-o", out_dir]
    bp_seconds, text = run(cmd, os.path.join(out_dir, "backproject_voxel.log"))
    m = re.search(r"Backprojected [\d,]+ images in ([\d.]+)s", text)
    return dict(map=os.path.join(out_dir, "backproject.mrc"), seconds=total + bp_seconds,
                backproject_seconds=bp_seconds, backproject_internal_seconds=float(m.group(1)) if m else None,
                commands=cmds + [cmd])


def _flip_centered(v, axis):
    """Mirror about the centre voxel D//2 (the origin of a centred grid)."""
    return np.roll(np.flip(v, axis), 1 if v.shape[axis] % 2 == 0 else 0, axis)


def _corr(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def orientation_check(vol, gt):
    """Correlation with the ground truth for the 48 signed axis permutations, the best one,
    and the integer offset of the cross-correlation peak (for the identity)."""
    results = []
    for perm in permutations(range(3)):
        v = np.transpose(vol, perm)
        for flips in product((False, True), repeat=3):
            w = v
            for ax, fl in enumerate(flips):
                if fl:
                    w = _flip_centered(w, ax)
            results.append((_corr(w, gt), perm, flips))
    ident = next(r for r in results if r[1] == (0, 1, 2) and not any(r[2]))
    best = max(results, key=lambda r: abs(r[0]))
    # offset: argmax of the circular cross-correlation (vol shifted by it matches gt best)
    xc = np.fft.ifftn(np.fft.fftn(gt - gt.mean()) * np.conj(np.fft.fftn(vol - vol.mean()))).real
    d = np.array(vol.shape)
    peak = np.array(np.unravel_index(np.argmax(np.abs(xc)), xc.shape))
    peak = np.where(peak > d // 2, peak - d, peak)
    return dict(corr_identity=ident[0],
                best=dict(corr=best[0], axes_zyx_permutation=list(best[1]),
                          flipped_axes=[i for i, f in enumerate(best[2]) if f]),
                best_differs=(best[1] != (0, 1, 2) or any(best[2])) and abs(best[0]) > abs(ident[0]) + 0.02,
                xcorr_peak_offset_zyx_px=peak.tolist()), best


def soft_sphere(d, radius, edge=4.0):
    """1 inside ``radius`` px of the centre voxel, a raised-cosine fall to 0 over ``edge`` px."""
    c = np.arange(d) - d // 2
    r = np.sqrt(c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2)
    t = np.clip((radius + edge - r) / edge, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def sinc2_taper(d):
    """prod_i sinc^2(x_i / d): the real-space fall-off left by linear interpolation into an
    unpadded grid without gridding correction (as in backproject_voxel)."""
    s = np.sinc((np.arange(d) - d // 2) / d) ** 2
    return (s[:, None, None] * s[None, :, None] * s[None, None, :]).astype(np.float32)


def _res(vol, gt, apix):
    freqs, curve = fsc(vol, gt)
    return dict(fsc_0_5_A=resolution_at(freqs, curve, 0.5, apix),
                fsc_0_143_A=resolution_at(freqs, curve, 0.143, apix))


def evaluate(name, path, gt, apix):
    vol, _ = read_mrc(path)
    if vol.shape != gt.shape:
        raise SystemExit("%s: map shape %s != ground truth %s" % (name, vol.shape, gt.shape))
    freqs, curve = fsc(vol, gt)
    out = dict(fsc_0_5_A=resolution_at(freqs, curve, 0.5, apix),
               fsc_0_143_A=resolution_at(freqs, curve, 0.143, apix),
               fsc_curve=dict(freq_per_px=[float(f) for f in freqs], fsc=[float(c) for c in curve]))
    # Diagnostics: the unmasked FSC with the ground truth rewards any real-space fall-off towards
    # the box edge (it acts as a soft solvent mask). (a) the same soft sphere (radius 3/8 box)
    # applied to the map and the ground truth; (b) the map times sinc^2(x/D) per axis (the
    # fall-off an unpadded linear-interpolation backprojection has built in), ground truth as is.
    d = gt.shape[0]
    mask = soft_sphere(d, 0.375 * d)
    out["diagnostics"] = dict(masked_sphere=_res(vol * mask, gt * mask, apix),
                              sinc2_taper=_res(vol * sinc2_taper(d), gt, apix))
    check, best = orientation_check(vol, gt)
    out["orientation"] = check
    # A curve that is negative from the first shells (inverted map) gives no meaningful crossing.
    out["valid"] = bool(check["corr_identity"] > 0 and curve[1] > 0
                        and min(out["fsc_0_5_A"], out["fsc_0_143_A"]) >= 2 * apix - 1e-6)
    if check["best_differs"]:
        w = np.transpose(vol, best[1])
        for ax, fl in enumerate(best[2]):
            if fl:
                w = _flip_centered(w, ax)
        f2, c2 = fsc(np.sign(best[0]) * w, gt)
        out["orientation"]["best_fsc_0_143_A"] = resolution_at(f2, c2, 0.143, apix)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--box", type=int, default=64)
    ap.add_argument("--apix", type=float, default=3.0)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join("benchmarks", "out", "recon"))
    ap.add_argument("--peer-venv", default=os.path.join(HERE, ".peer", "venv"),
                    help="cryodrgn venv (built by benchmarks/setup_peer.sh if missing)")
    ap.add_argument("--reuse-data", action="store_true",
                    help="keep OUT/data when its simulation.json matches the arguments")
    ap.add_argument("--pad1-variant", action="store_true",
                    help="also run ours with --pad 1 (no oversampling, like backproject_voxel)")
    args = ap.parse_args(argv)
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    py = sys.executable
    data_dir = os.path.join(args.out, "data")

    sim_seconds = simulate(args, data_dir, py)
    star = os.path.join(data_dir, "particles.star")
    gt, _ = read_mrc(os.path.join(data_dir, "gt_volumes", "state_00.mrc"))

    ours = run_ours(args, star, py)
    peer = run_cryodrgn(args, star, data_dir)

    runs = [("ours", ours), ("cryodrgn backproject_voxel", peer)]
    if args.pad1_variant:
        runs.append(("ours (--pad 1)", run_ours(args, star, py, "ours_pad1", ["--pad", "1"])))
    methods = {}
    for name, r in runs:
        ev = evaluate(name, r["map"], gt, args.apix)
        methods[name] = dict(r, **ev)

    a, b = methods["ours"], methods["cryodrgn backproject_voxel"]
    print()
    print("Homogeneous reconstruction vs ground truth: %d particles, box %d, %.2f Å/px, SNR %g, seed %d"
          % (args.n, args.box, args.apix, args.snr, args.seed))
    print("%-28s %12s %12s %10s %10s" % ("method", "FSC=0.5 (Å)", "FSC=0.143 (Å)", "seconds", "corr(GT)"))
    for name, m in methods.items():
        print("%-28s %12.2f %12.2f %10.1f %10.3f" % (name, m["fsc_0_5_A"], m["fsc_0_143_A"], m["seconds"],
                                                    m["orientation"]["corr_identity"]))
    print("diagnostics (same FSC, other views):")
    print("%-28s %12s %12s   %s" % ("", "FSC=0.5 (Å)", "FSC=0.143 (Å)", ""))
    for name, m in methods.items():
        for key, label in (("masked_sphere", "soft sphere r=3/8 box on map and GT"),
                           ("sinc2_taper", "map x sinc^2(x/D) taper")):
            r = m["diagnostics"][key]
            print("%-28s %12.2f %12.2f   %s" % (name, r["fsc_0_5_A"], r["fsc_0_143_A"], label))
    if b.get("backproject_internal_seconds") is not None:
        print("  (cryodrgn: backproject_voxel %.1f s wall, %.1f s of which backprojection itself; "
              "the rest is parsing and start-up)" % (b["backproject_seconds"], b["backproject_internal_seconds"]))
    ratios = dict(res_0_5_ours_over_cryodrgn=a["fsc_0_5_A"] / b["fsc_0_5_A"],
                  res_0_143_ours_over_cryodrgn=a["fsc_0_143_A"] / b["fsc_0_143_A"],
                  time_ours_over_cryodrgn=a["seconds"] / b["seconds"])
    print("ratio ours/cryodrgn: resolution@0.5 %.3f, resolution@0.143 %.3f (<1: ours finer), time %.2f"
          % (ratios["res_0_5_ours_over_cryodrgn"], ratios["res_0_143_ours_over_cryodrgn"],
             ratios["time_ours_over_cryodrgn"]))
    for name, m in methods.items():
        o = m["orientation"]
        if o["best_differs"]:
            print("WARNING %s: matches the ground truth better after axes %s / flips %s (corr %.3f vs %.3f)"
                  % (name, o["best"]["axes_zyx_permutation"], o["best"]["flipped_axes"], o["best"]["corr"],
                     o["corr_identity"]))
        if not m["valid"]:
            print("WARNING %s: its FSC with the ground truth is not usable (negative at low frequency);"
                  " the resolutions above are meaningless" % name)
        if o["corr_identity"] < 0:
            print("WARNING %s: negative correlation with the ground truth (inverted contrast)" % name)
        if any(o["xcorr_peak_offset_zyx_px"]):
            print("NOTE %s: cross-correlation peak at offset %s px (zyx)" % (name, o["xcorr_peak_offset_zyx_px"]))

    results = dict(config=dict(n=args.n, box=args.box, apix=args.apix, snr=args.snr, seed=args.seed,
                               simulate_seconds=sim_seconds, cpu_count=os.cpu_count()),
                   methods=methods, ratios=ratios)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("wrote %s" % os.path.join(args.out, "results.json"))
    return results


if __name__ == "__main__":
    main()
