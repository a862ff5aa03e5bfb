"""``flexplugin``: the engine's command line (usable without Scipion).

    flexplugin simulate    --out DIR --n N --box D --apix A --snr S --seed K [--states K | --volumes ... | --structure M]
    flexplugin check       PARTICLES [--datadir DIR]
    flexplugin reconstruct --particles P --out map.mrc [--box D]

Bad input ends with one line ``error: <file>: <problem>`` and exit status 2.
"""
import argparse
import os
import sys
import time

from .errors import InputError


def log(msg):
    print(msg, flush=True)


def _add_particles_args(p, required=True):
    p.add_argument("--particles", required=required, help="RELION .star or cryoSPARC .cs file")
    p.add_argument("--datadir", help="folder holding the image stacks named by relative paths")
    p.add_argument("--passthrough", help="cryoSPARC *_passthrough_particles.cs for a .cs input")
    p.add_argument("--invert", action="store_true",
                   help="invert the image contrast (stacks with dark protein; RELION writes bright)")


def cmd_simulate(a):
    from .simulate import simulate
    simulate(a.out, n=a.n, box=a.box, apix=a.apix, snr=a.snr, seed=a.seed, states=a.states,
             volumes=a.volumes, structure=a.structure, continuous=a.continuous, max_angle=a.max_angle,
             defocus=(a.defocus_min, a.defocus_max), voltage=a.voltage, cs=a.cs,
             amp_contrast=a.amp_contrast, max_shift=a.max_shift, log=log)


def cmd_check(a):
    from .io.check import check_particles, format_report
    report = check_particles(a.particles, datadir=a.datadir, passthrough=a.passthrough,
                             scan_images=not a.no_scan)
    print(format_report(report))


def cmd_reconstruct(a):
    import numpy as np
    from .analysis.fsc import resolution_at, write_fsc
    from .io import read_particles, ImageSource, write_mrc
    from .reconstruct import reconstruct
    table = read_particles(a.particles, datadir=a.datadir, passthrough=a.passthrough)
    if a.max_particles and a.max_particles < len(table):
        table = table.subset(np.sort(np.random.default_rng(a.seed).choice(len(table), a.max_particles,
                                                                          replace=False)))
    log("reconstruct: %d particles, box %d, %.4f Å/px%s" % (len(table), table.box, table.apix,
                                                          "" if table.has_ctf else ", no CTF"))
    r = reconstruct(table, ImageSource(table), box=a.box, pad=a.pad, invert=a.invert, seed=a.seed, log=log)
    stem = os.path.splitext(a.out)[0]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_mrc(a.out, r["map"], r["apix"])
    write_mrc(stem + "_half1.mrc", r["half1"], r["apix"])
    write_mrc(stem + "_half2.mrc", r["half2"], r["apix"])
    write_fsc(stem + "_fsc.txt", r["freqs"], r["fsc"], r["apix"])
    log("reconstruct: half-map FSC 0.143 at %.2f Å, 0.5 at %.2f Å; wrote %s (+ _half1, _half2, _fsc.txt)"
        % (resolution_at(r["freqs"], r["fsc"], 0.143, r["apix"]),
           resolution_at(r["freqs"], r["fsc"], 0.5, r["apix"]), a.out))


def build_parser():
    ap = argparse.ArgumentParser(prog="flexplugin", description="Heterogeneous cryo-EM reconstruction engine")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="simulate a heterogeneous particle set with ground truth")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=1000, help="number of particles")
    p.add_argument("--box", type=int, default=64, help="box size in pixels")
    p.add_argument("--apix", type=float, default=3.0, help="pixel size in Å")
    p.add_argument("--snr", type=float, default=0.1, help="var(signal) / var(noise); 0 for no noise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--states", type=int, default=4, help="states along the built-in/hinge motion")
    p.add_argument("--continuous", action="store_true", help="sample the motion continuously")
    p.add_argument("--max-angle", type=float, default=60.0, help="hinge angle at the last state (deg)")
    p.add_argument("--volumes", nargs="+", help="maps of discrete states (instead of the built-in object)")
    p.add_argument("--structure", help="PDB/mmCIF model; each MODEL is a state, or a hinge motion if one")
    p.add_argument("--defocus-min", type=float, default=10000.0, help="Å")
    p.add_argument("--defocus-max", type=float, default=25000.0, help="Å")
    p.add_argument("--voltage", type=float, default=300.0, help="kV")
    p.add_argument("--cs", type=float, default=2.7, help="spherical aberration, mm")
    p.add_argument("--amp-contrast", type=float, default=0.1)
    p.add_argument("--max-shift", type=float, help="largest shift in pixels (default box/16)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("check", help="read a particle set and report on it, or say what is wrong")
    p.add_argument("particles", help="RELION .star or cryoSPARC .cs file")
    p.add_argument("--datadir", help="folder holding the image stacks named by relative paths")
    p.add_argument("--passthrough", help="cryoSPARC *_passthrough_particles.cs for a .cs input")
    p.add_argument("--no-scan", action="store_true", help="do not scan the images for NaN/inf")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("reconstruct", help="homogeneous reconstruction with known poses and CTF")
    _add_particles_args(p)
    p.add_argument("--out", required=True, help="output map (.mrc); half maps and FSC beside it")
    p.add_argument("--box", type=int, help="reconstruct at this box (Fourier-cropped images)")
    p.add_argument("--pad", type=int, default=2, help="oversampling of the 3D transform")
    p.add_argument("--max-particles", type=int, help="use a random subset of this size")
    p.add_argument("--seed", type=int, default=0, help="half-set split when the star has none")
    p.set_defaults(func=cmd_reconstruct)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    t0 = time.time()
    try:
        args.func(args)
    except InputError as exc:
        print("error: %s" % exc, file=sys.stderr, flush=True)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print("error: %s: %s" % (getattr(exc, "filename", "") or "", exc.strerror or exc), file=sys.stderr)
        return 2
    except OSError as exc:
        print("error: %s" % exc, file=sys.stderr, flush=True)
        return 1
    log("flexplugin %s: done in %.1f s" % (args.command, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
