"""``flexplugin``: the engine's command line (usable without Scipion).

    flexplugin simulate    --out DIR --n N --box D --apix A --snr S --seed K [--states K | --volumes ... | --structure M]
    flexplugin check       PARTICLES [--datadir DIR]
    flexplugin reconstruct --particles P --out map.mrc [--box D]
    flexplugin train       METHOD --particles P --out DIR --epochs N [--zdim Z --box D --resume ...]
    flexplugin encode      --model DIR --particles P --out z.npy
    flexplugin decode      --model DIR (--z "v1,v2,..." | --z-file z.txt) --out DIR [--box D]
    flexplugin analyze     --model DIR --z z.npy --out DIR [--kmeans K --pcs N --umap --ndim 2|3
                           --traversal-points N --path I,J --box D --seed S]
    flexplugin serve       --model DIR [--box D]   (JSON lines on stdin/stdout; see engine/serve.py)
    flexplugin mask        --out m.mrc (--sphere --box D --apix A [--center x,y,z] --radius R |
                           --map v.mrc --threshold T [--dilate A]) [--soft A]

``train`` has one sub-command per registered method, whose hyper-parameter options are generated
from the method's Config dataclass (field ``enc_layers`` -> ``--enc-layers``).

Bad input ends with one line ``error: <file>: <problem>`` and exit status 2; so does an output
that cannot be written (``error: <file>: <reason>``, e.g. a read-only folder or a full disk),
which leaves the earlier version of that file whole (every output is written atomically).
"""
import argparse
import os
import sys
import time

from .errors import InputError


INPUT_FLAGS = {"mask": "--mask", "reference": "--reference", "atomic_model": "--structure"}
INPUT_HELP = {
    "mask": "soft mask .mrc (particles' box and pixel size): where the method looks for change",
    "reference": "reference map .mrc (particles' box and pixel size)",
    "atomic_model": "atomic model (PDB or mmCIF) fitted into the particles' consensus map",
}


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
             amp_contrast=a.amp_contrast, max_shift=a.max_shift, hidden_bfactor=a.hidden_bfactor,
             log=log)


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
    r = reconstruct(table, ImageSource(table), box=a.box, pad=a.pad, invert=a.invert, window=a.window or None,
                    seed=a.seed, log=log)
    stem = os.path.splitext(a.out)[0]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_mrc(a.out, r["map"], r["apix"])
    write_mrc(stem + "_half1.mrc", r["half1"], r["apix"])
    write_mrc(stem + "_half2.mrc", r["half2"], r["apix"])
    write_fsc(stem + "_fsc.txt", r["freqs"], r["fsc"], r["apix"])
    log("reconstruct: half-map FSC 0.143 at %.2f Å, 0.5 at %.2f Å; wrote %s (+ _half1, _half2, _fsc.txt)"
        % (resolution_at(r["freqs"], r["fsc"], 0.143, r["apix"]),
           resolution_at(r["freqs"], r["fsc"], 0.5, r["apix"]), a.out))


def _model_path(path):
    """A model folder (holding checkpoint.pt) or a checkpoint file."""
    from .checkpoints import CHECKPOINT
    return os.path.join(path, CHECKPOINT) if os.path.isdir(path) else path


def _load_model(path):
    """The trained model of ``--model`` (a training folder or a checkpoint file), or InputError."""
    from .methods import load_method
    from .checkpoints import checkpoint_problem
    ck = _model_path(path)
    if not os.path.isfile(ck):
        raise InputError(ck, "file not found (--model takes a training output folder or its "
                             "checkpoint.pt)")
    try:
        return load_method(ck)
    except Exception as exc:   # torch raises RuntimeError, UnpicklingError, EOFError, KeyError, ...
        raise InputError(ck, "cannot read the model checkpoint (%s)" % checkpoint_problem(exc))


def cmd_train(a):
    import dataclasses
    from .inputs import INPUTS
    from .methods import METHODS
    from .train import train
    fields = [f.name for f in dataclasses.fields(METHODS[a.method].Config)]
    config = {k: getattr(a, k) for k in fields if getattr(a, k) is not None}
    train(a.method, a.particles, a.out, a.epochs, config=config, box=a.box, seed=a.seed,
          resume=a.resume, max_particles=a.max_particles, invert=a.invert, window=not a.no_window,
          datadir=a.datadir, passthrough=a.passthrough, num_workers=a.num_workers,
          log_every=a.log_every, device=a.device, keep_epochs=a.keep_epochs, threads=a.threads,
          log=log, ddp=a.ddp, **{k: getattr(a, k, None) for k in INPUTS})


def cmd_encode(a):
    from .io.mrc import save_npy
    from .train import dataset_for, encode_dataset
    model = _load_model(a.model)
    data = dataset_for(model, a.particles, datadir=a.datadir, passthrough=a.passthrough)
    enc = encode_dataset(model, data, batch_size=a.batch_size)
    folder = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(folder, exist_ok=True)
    save_npy(a.out, enc["z"])
    for key in ("rotations", "shifts_A"):      # methods that estimate poses
        if key in enc:
            save_npy(os.path.join(folder, key + ".npy"), enc[key])
    log("encode: %d particles -> %s (zdim %d%s)" % (len(data), a.out, model.zdim,
                                                    ", with poses" if "rotations" in enc else ""))


def cmd_decode(a):
    import numpy as np
    import torch
    from .io import write_mrc
    model = _load_model(a.model)
    if a.z_file:
        try:
            zs = np.load(a.z_file) if a.z_file.endswith(".npy") else np.loadtxt(a.z_file, ndmin=2)
        except ValueError as exc:
            raise InputError(a.z_file, "cannot read latent points (%s)" % exc)
    elif a.z:
        zs = np.array([[float(v) for v in z.replace(",", " ").split()] for z in a.z])
    else:
        zs = np.zeros((1, 0))
    zs = np.asarray(zs, dtype=np.float32).reshape(len(zs), -1)
    if zs.shape[1] != model.zdim:
        raise InputError(a.z_file or "--z", "latent points have %d values, the model's zdim is %d"
                         % (zs.shape[1], model.zdim))
    os.makedirs(a.out, exist_ok=True)
    info = model.data_info
    residues = _residues(model) if hasattr(model, "decode_structure") else None
    if residues is not None:
        from .io.structure import model_suffix, pdb_problem, write_ca_model
        suffix = model_suffix(residues)
        if suffix != ".pdb":
            log("decode: models written as mmCIF (%s)" % pdb_problem(residues))
    for i, z in enumerate(zs):
        vol = model.decode_volume(torch.as_tensor(z), box=a.box).numpy()
        write_mrc(os.path.join(a.out, "vol_%03d.mrc" % i), vol, info.apix * info.box / vol.shape[0],
                  origin_centered=True)
        if residues is not None:
            write_ca_model(os.path.join(a.out, "vol_%03d%s" % (i, suffix)), residues,
                           model.decode_structure(torch.as_tensor(z)).numpy())
    log("decode: wrote %d maps%s to %s" % (len(zs), " and models" if residues is not None else "", a.out))


def _residues(model):
    """Residue names, chains and numbers of a model's atomic model: as the checkpoint holds them;
    for a checkpoint without names and chains, from the file it was trained with when that is
    still readable and matches, else UNK residues of chain A."""
    from types import SimpleNamespace
    from .io.structure import read_structure
    am = model.inputs["atomic_model"]
    numbers = am["numbers"].tolist()
    if am.get("names") is not None and am.get("chains") is not None:
        return SimpleNamespace(names=list(am["names"]), chains=list(am["chains"]), numbers=numbers)
    try:
        st = read_structure(model.data_info.atomic_model)
        if list(st.numbers) == numbers:
            return st
    except (InputError, OSError, TypeError):
        pass
    return SimpleNamespace(names=["UNK"] * len(numbers), chains=["A"] * len(numbers), numbers=numbers)


def cmd_analyze(a):
    import numpy as np
    from .analysis.landscape import analyze
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)
    path = None
    if a.path:
        try:
            path = [int(v) for v in a.path.replace(",", " ").split()]
        except ValueError:
            path = []
        if len(path) != 2:
            raise InputError("--path", "expected two particle indices I,J (got %r)" % a.path)
    model = _load_model(a.model)
    model.eval()
    try:
        z = np.load(a.z) if a.z.endswith(".npy") else np.loadtxt(a.z, ndmin=2)
    except ValueError as exc:
        raise InputError(a.z, "cannot read latent points (%s)" % exc)
    analyze(model, z, a.out, kmeans_k=a.kmeans, pcs=a.pcs, umap=a.umap, ndim=a.ndim,
            traversal_points=a.traversal_points, path=path, box=a.box, seed=a.seed, log=log)


def cmd_serve(a):
    from .serve import serve_stdio
    serve_stdio(_model_path(a.model), box=a.box, threads=a.threads, verbose=a.verbose)


def cmd_mask(a):
    from .io import read_mrc, write_mrc
    from .masks import sphere_mask, threshold_mask
    if a.sphere == bool(a.map):
        raise InputError("--sphere/--map", "give either --sphere (with --box, --apix, --radius) "
                         "or --map with --threshold")
    if a.sphere:
        for flag, value in (("--box", a.box), ("--apix", a.apix), ("--radius", a.radius)):
            if value is None:
                raise InputError(flag, "required with --sphere")
        try:
            center = [float(v) for v in a.center.replace(",", " ").split()]
        except ValueError:
            center = []
        if len(center) != 3:
            raise InputError("--center", "expected three numbers x,y,z in Å (got %r)" % a.center)
        apix = a.apix
        try:
            mask = sphere_mask(a.box, apix, center, a.radius, a.soft)
        except ValueError as exc:
            raise InputError("--sphere", exc)
    else:
        if a.threshold is None:
            raise InputError("--threshold", "required with --map")
        vol, apix = read_mrc(a.map)
        apix = a.apix or apix
        if not apix:
            raise InputError(a.map, "the header gives no pixel size; give --apix")
        try:
            mask = threshold_mask(vol, a.threshold, a.dilate, a.soft, apix)
        except ValueError as exc:
            raise InputError(a.map, exc)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_mrc(a.out, mask, apix)
    log("mask: wrote %s (%d^3, %.3f Å/px, %.0f voxels above 0.5)"
        % (a.out, mask.shape[0], apix, float((mask > 0.5).sum())))


def _model_option(p):
    p.add_argument("--model", required=True, help="training output folder (or checkpoint file)")


def _threads_option(p):
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")


def _add_config_args(p, config_cls):
    """One option per field of a method's Config dataclass; None default = keep the method's."""
    import dataclasses
    import typing
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        kind = hints[f.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        kind = args[0] if args else kind
        flag = "--" + f.name.replace("_", "-")
        text = "default: %s" % f.default
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            p.add_argument(flag, type=kind, default=None, help=text)


def _add_train_parser(sub):
    from .inputs import INPUTS
    from .methods import METHODS
    p = sub.add_parser("train", help="train a method on a particle set with poses")
    methods = p.add_subparsers(dest="method", required=True)
    for name, cls in METHODS.items():
        m = methods.add_parser(name, help=(cls.__doc__ or cls.__module__).strip().split("\n")[0])
        _add_particles_args(m)
        m.add_argument("--out", required=True, help="output folder (checkpoint, z.npy, maps)")
        m.add_argument("--epochs", type=int, required=True)
        m.add_argument("--box", type=int, help="train at this box (Fourier-cropped images)")
        m.add_argument("--seed", type=int, default=0)
        m.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
        m.add_argument("--max-particles", type=int, help="train on a random subset of this size")
        m.add_argument("--no-window", action="store_true", help="no soft circular image window")
        m.add_argument("--num-workers", type=int, default=0, help="data loading processes")
        m.add_argument("--log-every", type=int, default=100, help="progress line every N batches")
        m.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
        _threads_option(m)
        m.add_argument("--keep-epochs", action="store_true", help="keep OUT/checkpoints/epoch_NNN.pt")
        m.add_argument("--ddp", action="store_true",
                       help="data-parallel training in the processes of a torchrun launch "
                            "(gloo on CPU, NCCL on GPU; one process per GPU)")
        for key in INPUTS:
            if key in cls.uses or key in cls.requires:
                m.add_argument(INPUT_FLAGS[key], dest=key, required=key in cls.requires,
                               help=INPUT_HELP[key])
        _add_config_args(m, cls.Config)
        m.set_defaults(func=cmd_train)


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
    p.add_argument("--hidden-bfactor", type=float, nargs=2, metavar=("AT_MIN", "AT_MAX"),
                   help="an envelope the particle file does not record: each image blurred by a "
                        "B-factor (Å^2) rising linearly with its defocus, from AT_MIN at "
                        "--defocus-min to AT_MAX at --defocus-max (as the spatial coherence of the "
                        "beam does); the star and .cs keep B = 0")
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
    p.add_argument("--pad", type=int, default=1,
                   help="oversampling of the 3D transform (2 is slower and, measured, not sharper)")
    p.add_argument("--window", type=float, default=0.85,
                   help="soft circular window on the images: 1 inside this fraction of the radius; 0: none")
    p.add_argument("--max-particles", type=int, help="use a random subset of this size")
    p.add_argument("--seed", type=int, default=0, help="half-set split when the star has none")
    p.set_defaults(func=cmd_reconstruct)

    _add_train_parser(sub)

    p = sub.add_parser("encode", help="latent coordinates of particles with a trained model")
    _model_option(p)
    p.add_argument("--particles", required=True, help="RELION .star or cryoSPARC .cs file")
    p.add_argument("--datadir", help="folder holding the image stacks named by relative paths")
    p.add_argument("--passthrough", help="cryoSPARC *_passthrough_particles.cs for a .cs input")
    p.add_argument("--out", required=True, help="output .npy (N x zdim, particle-file order); "
                   "methods that estimate poses also write rotations.npy and shifts_A.npy beside it")
    p.add_argument("--batch-size", type=int, default=256)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="maps at latent points with a trained model")
    _model_option(p)
    p.add_argument("--z", action="append", help='a latent point "v1,v2,..." (repeatable; --z=-1,2 when it starts with a minus)')
    p.add_argument("--z-file", help="latent points, one per row (.txt or .npy)")
    p.add_argument("--out", required=True, help="output folder: vol_000.mrc, vol_001.mrc, ...")
    p.add_argument("--box", type=int, help="decode at this (smaller) box")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("analyze", help="latent landscape: PCA, UMAP, k-means, traversals, plots")
    _model_option(p)
    p.add_argument("--z", required=True, help="latent points (N x zdim, .npy or .txt)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--kmeans", type=int, default=0,
                   help="k-means clusters, maps at the particle nearest each centre (0: none)")
    p.add_argument("--pcs", type=int, default=2, help="principal components to traverse")
    p.add_argument("--umap", action="store_true", help="zred is a UMAP embedding (else PCA)")
    p.add_argument("--ndim", type=int, choices=(2, 3), default=2, help="dimensions of zred")
    p.add_argument("--traversal-points", type=int, default=10,
                   help="maps along each traversal (PCs: 5th to 95th percentile; path)")
    p.add_argument("--path", help="I,J: traversal between particles I and J (neighbour graph)")
    p.add_argument("--box", type=int, help="decode at this (smaller) box")
    p.add_argument("--seed", type=int, default=0, help="k-means and UMAP seed")
    _threads_option(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("serve", help="decoder answering JSON-line requests on stdin/stdout")
    _model_option(p)
    p.add_argument("--box", type=int, help="default decode box (requests may name their own)")
    _threads_option(p)
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("mask", help="soft mask from a sphere or a thresholded map")
    p.add_argument("--out", required=True, help="output mask .mrc")
    p.add_argument("--sphere", action="store_true", help="a sphere (needs --box, --apix, --radius)")
    p.add_argument("--box", type=int, help="sphere: box size in voxels")
    p.add_argument("--apix", type=float, help="voxel size in Å (--map: overrides the header's)")
    p.add_argument("--center", default="0,0,0",
                   help="sphere centre x,y,z in Å from the box centre (--center=-10,0,0 when it "
                        "starts with a minus)")
    p.add_argument("--radius", type=float, help="sphere radius in Å")
    p.add_argument("--map", help="map .mrc to threshold")
    p.add_argument("--threshold", type=float, help="--map: voxels above this value are inside")
    p.add_argument("--dilate", type=float, default=0.0, help="--map: grow the region by this many Å")
    p.add_argument("--soft", type=float, default=0.0, help="width of the raised-cosine edge in Å")
    p.set_defaults(func=cmd_mask)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    t0 = time.time()
    try:
        args.func(args)
    except InputError as exc:
        print("error: %s" % exc, file=sys.stderr, flush=True)
        return 2
    except OSError as exc:      # a file that cannot be read or written (read-only, disk full, ...)
        name = exc.filename or ""
        print("error: %s%s" % (name + ": " if name else "", exc.strerror or exc), file=sys.stderr,
              flush=True)
        return 2
    if args.command != "serve":     # serve's stdout carries its answers only
        if os.environ.get("RANK", "0") == "0":      # one line per run, also under torchrun
            log("flexplugin %s: done in %.1f s" % (args.command, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
