"""The one training loop for every method (see ``methods/base.py`` for the Method contract).

``train(...)`` writes into ``out``:

- ``checkpoint.pt`` after every epoch, atomically (a temporary file then ``os.replace``): the
  model (``Method.checkpoint()``), optimizer, epoch, RNG states (torch, the shuffling generator,
  CUDA) and the training rows, so ``resume=True`` continues where it stopped and ends with the
  same model as an uninterrupted run of the same seed; ``checkpoints/epoch_NNN.pt`` too with
  ``keep_epochs``;
- ``metrics.json``: per-epoch mean loss and metrics, time and images/s (rewritten every epoch);
- ``config.json``: method, hyper-parameters, data info (box, pixel size, zdim, particle file);
- at the end ``z.npy`` (posterior means of *all* particles in star-row order, also when trained on
  ``max_particles``), ``rotations.npy`` / ``shifts_A.npy`` for methods that estimate poses, and
  ``consensus.mrc`` (decoded at the mean z, with its voxel size).

Data-parallel training (``ddp=True`` in processes started by ``torchrun``): every process takes
its share of each global batch, DistributedDataParallel averages the gradients, and process 0
alone logs and writes the files; the result matches one process with the same batch size.

Progress: a plain line (flushed, Scipion shows stdout) every ``log_every`` batches and per epoch;
a tqdm bar only when stdout is a terminal. Mixed precision follows ``Config.precision``
(:func:`autocast_mode`): float16 autocast + gradient scaling on CUDA, bfloat16 autocast on CPUs
with bfloat16 matrix instructions (AMX, AVX-512 BF16), float32 master weights and optimizer state always.
"""
import dataclasses
import os
import sys
import time

import numpy as np
import torch

from ..constants import CONFIG_JSON, CONSENSUS_MAP, Z_FILE
from .checkpoints import (CHECKPOINT, load_checkpoint, remove_stale_temporaries, save_checkpoint,
                          write_json)
from .data import ParticleDataset, loader
from .errors import InputError
from .io import read_particles, write_mrc
from .inputs import load_inputs
from .io.mrc import save_npy
from .methods import METHODS, DataInfo, load_method
from .methods.base import autocast_mode, cpu_has_bf16  # noqa: F401 (part of this module's API)



def _device(name, log=print):
    """The torch device of ``--device``: "auto" is the first GPU when CUDA works, else the CPU (said
    in the log); a GPU asked for by name that this machine cannot use is an InputError."""
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        log("train: device auto -> cpu (%s)" % _no_cuda_reason())
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError("--device", "%r is not a device (auto, cpu, cuda, cuda:1, ...)" % name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device", "%s was asked for, but %s: use --device cpu (or auto)"
                             % (name, _no_cuda_reason()))
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError("--device", "%s was asked for, but this machine has %d CUDA device(s)"
                             % (name, torch.cuda.device_count()))
    return device


def _no_cuda_reason():
    if torch.version.cuda is None:
        return "this torch (%s) is built without CUDA" % torch.__version__
    return "no CUDA device is visible (CUDA_VISIBLE_DEVICES=%s)" % os.environ.get("CUDA_VISIBLE_DEVICES", "unset")


def _adam(model, cfg):
    """Adam over the model's parameter groups (each at the run's learning rate times its
    ``lr_scale``), with the fused (one kernel for all parameters) implementation where torch has
    it for the device: the same update as the per-parameter loop, ~4x less optimizer time per
    step."""
    groups = [dict(params=g["params"], lr=cfg.lr * g.get("lr_scale", 1.0))
              for g in model.parameter_groups()]
    try:
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _config(cls, config):
    """The method's Config with the given overrides, its generic options checked (InputError
    naming the option otherwise)."""
    try:
        cfg = cls.Config.from_dict(dict(cls.Config().to_dict(), **(config or {})))
    except (TypeError, ValueError) as exc:
        raise InputError("train %s" % cls.name, exc)
    if cfg.zdim < 0:
        raise InputError("--zdim", "must be 0 or more (got %d); 0 trains a homogeneous map "
                         "(no latent space)" % cfg.zdim)
    if cfg.batch_size < 1:
        raise InputError("--batch-size", "must be at least 1 (got %d)" % cfg.batch_size)
    if not cfg.lr > 0:
        raise InputError("--lr", "must be positive (got %g)" % cfg.lr)
    if cfg.weight_decay < 0:
        raise InputError("--weight-decay", "must be 0 or more (got %g)" % cfg.weight_decay)
    if cfg.precision not in ("auto", "fp32", "bf16"):
        raise InputError("--precision", "must be auto, fp32 or bf16 (got %r)" % cfg.precision)
    return cfg


def _to_device(batch, device):
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def dataset_for(model, particles, datadir=None, passthrough=None):
    """The particles of ``particles`` prepared as ``model`` was trained (box, invert, window, scale)."""
    info = model.data_info
    table = read_particles(particles, datadir=datadir, passthrough=passthrough)
    return ParticleDataset(table, box=info.box, invert=info.invert, window=info.window,
                           scale=info.scale, needs_poses=model.needs_poses)


def encode_dataset(model, dataset, batch_size=256, device="cpu", num_workers=0):
    """Encode every particle in table order -> dict of numpy arrays: ``z`` and, when the method
    estimates them, ``rotations`` and ``shifts_A``."""
    model.eval()
    parts = {}
    for batch in loader(dataset, np.arange(len(dataset)), batch_size, num_workers=num_workers):
        enc = model.encode(_to_device(batch, device))
        for key in ("z", "rotations", "shifts_A"):
            value = getattr(enc, key)
            if value is not None:
                # a copy: a method's output may be a view of a batch-sized buffer, which the
                # list would otherwise keep alive (measured: ~48 KB per particle at D=128)
                parts.setdefault(key, []).append(value.detach().float().cpu().clone().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def train(method, particles, out, epochs, config=None, box=None, seed=0, resume=False,
          max_particles=None, invert=False, window=True, datadir=None, passthrough=None,
          num_workers=0, log_every=100, device=None, keep_epochs=False, threads=None, log=print,
          mask=None, reference=None, atomic_model=None, ddp=False):
    """Train ``method`` (a METHODS key) on ``particles`` for ``epochs`` epochs into ``out``.

    ``config``: hyper-parameters overriding the method's Config defaults (ignored on resume, where
    the checkpoint's are used). ``mask`` / ``reference`` / ``atomic_model``: files of the optional
    inputs the method takes (:mod:`flexplugin.engine.inputs`). ``threads``: CPU threads for torch (default: torch's choice; 1
    is much faster than several on a machine whose cores are busy). ``ddp``: data-parallel
    training in the processes started by ``torchrun`` (:func:`init_distributed`). Returns the
    trained model.

    The steps: the processes and device (:func:`_start_processes`), the particles, the model from
    the checkpoint (:func:`_resume`) or new (:func:`_new_model`), the optimizer and precision
    (:func:`_prepare`), ``config.json`` (:func:`_write_config`), then per epoch
    :func:`_run_epoch` and :func:`_write_checkpoint`, and at the end :func:`_end`.
    """
    if threads:
        torch.set_num_threads(threads)
    os.makedirs(out, exist_ok=True)
    rank, world, device = _start_processes(_device(device, log), ddp)
    if rank:
        log = _quiet
    ck_path = os.path.join(out, CHECKPOINT)
    if epochs < 1:
        raise InputError("--epochs", "must be at least 1 (got %d)" % epochs)
    table = read_particles(particles, datadir=datadir, passthrough=passthrough)
    for note in table.notes:
        log("train: note: %s" % note)
    gen = torch.Generator()
    if rank == 0:
        remove_stale_temporaries(out)
    if resume and os.path.exists(ck_path):
        ck, model, rows, start, history = _resume(ck_path, method, table, gen, log)
    else:
        if resume:
            log("train: no checkpoint in %s, starting from scratch" % out)
        model, rows = _new_model(method, table, particles, epochs, gen, log, config=config,
                                 box=box, seed=seed, max_particles=max_particles, invert=invert,
                                 window=window, mask=mask, reference=reference,
                                 atomic_model=atomic_model)
        ck, start, history = None, 0, []
    run = _prepare(model, table, rows, gen, ck, device, rank, world)
    _write_config(run, table, epochs, seed, out, log)
    tty = sys.stdout.isatty()
    for epoch in range(start + 1, epochs + 1):
        history.append(_run_epoch(run, epoch, epochs, num_workers, log_every, tty, log))
        _write_checkpoint(run, epoch, history, out, ck_path, keep_epochs)
    _end(run, out, num_workers, log)
    return model


def _start_processes(device, ddp):
    """-> (rank, world size, this process's device): one process, or the processes of a
    ``torchrun`` launch with ``ddp`` (a torchrun launch without it is refused)."""
    if not ddp and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise ValueError("started by torchrun with %s processes: add --ddp (or run one process)"
                         % os.environ["WORLD_SIZE"])
    return init_distributed(device) if ddp else (0, 1, device)


def _resume(ck_path, method, table, gen, log):
    """The model, rows, epoch and metrics of the checkpoint ``ck_path``, the shuffling generator
    ``gen`` set to its state -> (checkpoint, model, rows, start epoch, history)."""
    ck = load_checkpoint(ck_path, method)
    model = load_method(ck["model"])
    rows, start, history = ck["rows"].numpy(), ck["epoch"], ck["metrics"]
    if len(rows) and rows.max() >= len(table):
        raise InputError(table.source, "holds %d particles, but the checkpoint %s was trained on "
                         "a set of at least %d: resume with the same particles"
                         % (len(table), ck_path, rows.max() + 1))
    gen.set_state(ck["rng"]["sampler"])
    log("train: resuming %s from epoch %d (%s)" % (model.name, start, ck_path))
    return ck, model, rows, start, history


def _new_model(method, table, particles, epochs, gen, log, config=None, box=None, seed=0,
               max_particles=None, invert=False, window=True, mask=None, reference=None,
               atomic_model=None):
    """A new model of ``method`` on the particles of ``table`` (its options and inputs checked,
    its data scale estimated, seeded by ``seed``, as is ``gen``), initialised by the method
    -> (model, the rows it trains on)."""
    cls = METHODS[method]
    cfg = _config(cls, config)
    if not table.has_ctf:
        log("train: warning: %s has no CTF parameters (rlnDefocusU or ctf/df1_A): training "
            "without CTF correction" % table.source)
    if max_particles is not None and max_particles < 1:
        raise InputError("--max-particles", "must be at least 1 (got %d)" % max_particles)
    rows = np.arange(len(table))
    if max_particles and max_particles < len(table):
        rows = np.sort(np.random.default_rng(seed).choice(len(table), max_particles, replace=False))
    if box is not None and (box < 2 or box > table.box or box % 2):
        raise InputError("--box", "must be even and at most the image size %d (got %d)"
                         % (table.box, box))
    data = ParticleDataset(table, box=box, invert=invert, window=window,
                           needs_poses=cls.needs_poses)
    inputs, paths = load_inputs(cls, table, data.box, mask=mask, reference=reference,
                                atomic_model=atomic_model, log=log, config=cfg)
    scale = data.estimate_scale(seed=seed)
    if not (np.isfinite(scale) and scale > 0):
        raise InputError(table.source, "the images hold NaN or infinite values, or are all "
                         "constant (standard deviation %s): run 'flexplugin check' to find them"
                         % scale)
    info = DataInfo(box=data.box, apix=data.apix, scale=scale, invert=invert, window=window,
                    particles=os.path.abspath(str(particles)), **paths)
    torch.manual_seed(seed)
    gen.manual_seed(seed)
    try:
        model = cls(cfg, info, inputs)
        model.initialise(data, rows, epochs, log)
    except ValueError as exc:       # the method's own checks of its options, inputs and schedule
        raise InputError("train %s" % cls.name, exc)
    return model, rows


@dataclasses.dataclass
class _Run:
    """What the steps of one training run share (built by :func:`_prepare`)."""
    model: object
    net: object                 # the model, or its DistributedDataParallel wrapper
    data: object                # the ParticleDataset as the model was trained
    rows: np.ndarray            # the particles trained on
    gen: torch.Generator        # the shuffling generator
    opt: object
    scaler: object              # torch.amp.GradScaler (enabled with float16 on CUDA)
    amp: bool                   # CUDA: its RNG state is checkpointed too
    cast_dtype: object          # autocast dtype; None: float32
    scaling: bool               # gradient scaling
    device: torch.device
    rank: int
    world: int
    bad_run: int = 0            # steps with non-finite gradients in a row (across epochs)


def _prepare(model, table, rows, gen, ck, device, rank, world):
    """The model on ``device`` (wrapped for data-parallel training when ``world`` > 1), its
    dataset, the optimizer and the arithmetic (autocast, gradient scaling), their states and the
    RNGs restored from the checkpoint ``ck`` when resuming -> a :class:`_Run`."""
    model.to(device)
    net = model if world == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=True)
    cfg, info = model.config, model.data_info
    data = ParticleDataset(table, box=info.box, invert=info.invert, window=info.window,
                           scale=info.scale, needs_poses=model.needs_poses)
    opt = _adam(model, cfg)
    amp = device.type == "cuda"
    cast_dtype, scaling = autocast_mode(getattr(cfg, "precision", "auto"), device, model.cpu_bfloat16)
    scaler = torch.amp.GradScaler("cuda", enabled=scaling)
    if ck is not None:
        opt.load_state_dict(ck["optimizer"])
        scaler.load_state_dict(ck["scaler"])
        torch.set_rng_state(ck["rng"]["torch"])
        if amp and "cuda" in ck["rng"]:
            torch.cuda.set_rng_state(ck["rng"]["cuda"])
    return _Run(model=model, net=net, data=data, rows=rows, gen=gen, opt=opt, scaler=scaler,
                amp=amp, cast_dtype=cast_dtype, scaling=scaling, device=device, rank=rank,
                world=world)


def _write_config(run, table, epochs, seed, out, log):
    """``config.json``, and the run's summary line in the log."""
    model, device, cast_dtype, world = run.model, run.device, run.cast_dtype, run.world
    cfg, info = model.config, model.data_info
    write_json(dict(method=model.name, config=cfg.to_dict(), data_info=info.to_dict(),
                     zdim=model.zdim, box=info.box, apix=info.apix, particles=info.particles,
                     n_particles=len(table), n_train=len(run.rows), epochs=epochs, seed=seed,
                     device=device.type),
                os.path.join(out, CONFIG_JSON))
    log("train: %s, %d of %d particles, box %d (%.3f Å/px), zdim %d, %d epochs, batch %d, lr %g, %s, %s, "
        "%d threads%s" % (model.name, len(run.rows), len(table), info.box, info.apix, model.zdim, epochs,
                         cfg.batch_size, cfg.lr, device,
                         "autocast %s" % str(cast_dtype).split(".")[-1] if cast_dtype else "float32",
                         torch.get_num_threads(), ", %d processes (DDP)" % world if world > 1 else ""))


def _run_epoch(run, epoch, epochs, num_workers, log_every, tty, log):
    """One pass over the run's rows (this process's share of each batch), logged -> the epoch's
    row of ``metrics.json`` (mean loss and metrics over every process's images, time, images/s)."""
    model = run.model
    model.train()
    model.start_epoch(epoch, epochs)
    batches = loader(run.data, run.rows, model.config.batch_size, generator=run.gen,
                     num_workers=num_workers, rank=run.rank, world=run.world)
    if tty:
        from tqdm import tqdm
        batches = tqdm(batches, desc="epoch %d" % epoch, leave=False)
    sums, seen, t0 = {}, 0, time.time()
    skipped = 0
    for i, batch in enumerate(batches, 1):
        batch = _to_device(batch, run.device)
        result = _step(run, batch, epoch, i)
        if result is None:
            skipped += 1
            continue
        n = len(batch["index"])
        seen += n
        for k, v in result.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v) * n
        if log_every and i % log_every == 0 and not tty:
            log("train: epoch %d/%d batch %d/%d %s (%.0f img/s)"
                % (epoch, epochs, i, len(batches), _fmt({k: v / seen for k, v in sums.items()}),
                   seen / (time.time() - t0)))
    if run.world > 1:
        sums, seen = _all_reduce_sums(sums, seen, run.device)
    dt = time.time() - t0
    means = {k: v / max(seen, 1) for k, v in sums.items()}
    log("train: epoch %d/%d %s, %.1f s (%.0f img/s)%s" % (
        epoch, epochs, _fmt(means), dt, seen / dt,
        ", %d steps skipped (non-finite gradients)" % skipped if skipped else ""))
    return dict(epoch=epoch, seconds=dt, images_per_s=seen / dt, **means)


def _step(run, batch, epoch, i):
    """One optimisation step on ``batch`` (batch ``i`` of ``epoch``) -> the method's result (loss
    and metrics), or None when the step was skipped for non-finite gradients under reduced
    precision. A non-finite loss, a non-finite gradient in float32 or ``MAX_SKIPPED_STEPS``
    skipped steps in a row end the training (InputError)."""
    model, cast_dtype, scaling = run.model, run.cast_dtype, run.scaling
    with torch.autocast(run.device.type, dtype=cast_dtype or torch.float32,
                        enabled=cast_dtype is not None):
        result = run.net(batch)
    if not scaling and not torch.isfinite(result["loss"].detach()):
        raise InputError("train %s" % model.name, "the loss became %s at epoch %d, batch %d "
                         "(the images are finite): lower --lr; the checkpoint of epoch %d "
                         "is kept" % (float(result["loss"].detach()), epoch, i, epoch - 1))
    run.opt.zero_grad(set_to_none=True)
    run.scaler.scale(result["loss"]).backward()
    if not scaling and not _grads_finite(model):
        # Under reduced precision a step with non-finite gradients is skipped (as the
        # gradient scaler does on GPUs); a run of them, or one in float32, ends training.
        run.bad_run += 1
        if cast_dtype is None or run.bad_run >= MAX_SKIPPED_STEPS:
            raise InputError("train %s" % model.name, "the gradients became non-finite at "
                             "epoch %d, batch %d (the loss is finite): %s; the checkpoint of "
                             "epoch %d is kept" % (epoch, i, "run with --precision fp32 (%d "
                             "steps in a row in %s)" % (run.bad_run, str(cast_dtype).split(".")[-1])
                             if cast_dtype else "lower --lr", epoch - 1))
        return None
    run.bad_run = 0
    run.scaler.step(run.opt)
    run.scaler.update()
    return result


def _write_checkpoint(run, epoch, history, out, ck_path, keep_epochs):
    """After an epoch, by process 0: ``checkpoint.pt`` (model, optimizer, gradient scaler, epoch,
    RNG states, rows, metrics), ``checkpoints/epoch_NNN.pt`` with ``keep_epochs``, and
    ``metrics.json``."""
    rng = {"torch": torch.get_rng_state(), "sampler": run.gen.get_state()}
    if run.amp:
        rng["cuda"] = torch.cuda.get_rng_state()
    if run.rank == 0:
        state = dict(model=run.model.checkpoint(), optimizer=run.opt.state_dict(),
                     scaler=run.scaler.state_dict(), epoch=epoch, rng=rng,
                     rows=torch.as_tensor(run.rows), metrics=history)
        save_checkpoint(state, ck_path)
        if keep_epochs:
            os.makedirs(os.path.join(out, "checkpoints"), exist_ok=True)
            save_checkpoint(state, os.path.join(out, "checkpoints", "epoch_%03d.pt" % epoch))
        write_json(dict(method=run.model.name, epochs=history), os.path.join(out, "metrics.json"))


def _end(run, out, num_workers, log):
    """The results of the trained model (:func:`finish`, by process 0), then the processes of a
    data-parallel run leave their group together."""
    if run.rank == 0:
        finish(run.model, run.data, out, device=run.device, num_workers=num_workers, log=log)
    if run.world > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()


def init_distributed(device):
    """Join the process group of a ``torchrun`` launch -> (rank, world size, this process's
    device): NCCL on GPUs (one per process, by LOCAL_RANK), gloo on CPUs."""
    import torch.distributed as dist
    if "WORLD_SIZE" not in os.environ:
        raise ValueError("--ddp: start the training with torchrun (python -m torch.distributed.run "
                         "--nproc_per_node N -m flexplugin.engine.cli train ... --ddp)")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def _all_reduce_sums(sums, seen, device):
    """Sum the per-process metric sums and image counts over the process group."""
    import torch.distributed as dist
    keys = list(sums)                   # the same order in every process (the same method)
    t = torch.tensor([sums[k] for k in keys] + [seen], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, t[:-1].tolist())), int(t[-1])


MAX_SKIPPED_STEPS = 20      # non-finite reduced-precision steps in a row before training stops


def _grads_finite(model):
    """Whether every gradient of the model is finite (one reduction per parameter)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.stack([g.float().sum() for g in grads])).all())


def _quiet(*args, **kwargs):
    pass


def finish(model, data, out, device="cpu", num_workers=0, log=print):
    """Write z.npy (all particles, star-row order), estimated poses if any, and consensus.mrc."""
    enc = encode_dataset(model, data, device=device, num_workers=num_workers)
    bad = ~np.isfinite(enc["z"]).all(axis=1)
    if bad.any():
        raise InputError("train %s" % model.name, "the model gives non-finite latent values for %d of "
                         "%d particles (first: row %d); z.npy is not written: train again with "
                         "--precision fp32 or a lower --lr" % (bad.sum(), len(bad), np.argmax(bad)))
    z = model.settle(enc["z"], log)
    if z is not enc["z"]:
        # the model re-expressed its latent: the checkpoint holds the new one
        ck_path = os.path.join(out, CHECKPOINT)
        ck = torch.load(ck_path, map_location="cpu", weights_only=True)
        ck["model"] = model.checkpoint()
        save_checkpoint(ck, ck_path)
        enc["z"] = z
    save_npy(os.path.join(out, Z_FILE), enc["z"])
    for key in ("rotations", "shifts_A"):
        if key in enc:
            save_npy(os.path.join(out, key + ".npy"), enc[key])
    model.write_results(out, enc["z"])
    vol = model.decode_volume(torch.as_tensor(enc["z"].mean(0)).to(device)).cpu().numpy()
    write_mrc(os.path.join(out, CONSENSUS_MAP), vol, model.data_info.apix, origin_centered=True)
    log("train: wrote z.npy (%d x %d) and consensus.mrc (%d^3, %.3f Å/px) in %s"
        % (enc["z"].shape + (vol.shape[0], model.data_info.apix, out)))


def _fmt(metrics):
    return " ".join("%s %.5g" % kv for kv in metrics.items())
