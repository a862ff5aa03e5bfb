"""Helpers of the engine tests: the command line in-process, simulated sets, training runs."""
import numpy as np


def run_cli(*args):
    """Run the engine's command line in-process; returns its exit status."""
    from flexplugin.engine.cli import main
    return main([str(a) for a in args])


def simulate_hinge(out, n=1500, snr=1.0, seed=3, states=1, box=32, apix=3.0, max_shift=None):
    """``flexplugin simulate`` of the built-in hinge object into ``out``; returns ``out``."""
    extra = [] if max_shift is None else ["--max-shift", max_shift]
    assert run_cli("simulate", "--out", out, "--n", n, "--box", box, "--apix", apix, "--snr", snr,
                   "--seed", seed, "--states", states, *extra) == 0
    return out


def train_z(method, data, out, epochs, *args, star="particles.star"):
    """``flexplugin train METHOD`` on ``data/star``; returns the written z (N, zdim)."""
    assert run_cli("train", method, "--particles", data / star, "--out", out, "--epochs", epochs,
                   *args) == 0
    return np.load(out / "z.npy")


def simulate_three_volumes(out, n, box=32, apix=3.0, snr=1.0, seed=5):
    """Particles of three discrete maps of the built-in object (whole, arm removed, arm swung by
    60 degrees) with CTF, shifts and known poses; returns the simulation folder."""
    from flexplugin.engine.io import write_mrc
    from flexplugin.engine.simulate import builtin_object, hinge_states, render_volume
    coords, weights, moving, hinge, axis = builtin_object()
    coords, hinge = coords * box, hinge * box
    swung = hinge_states(coords, moving, hinge, axis, 60.0, [1.0])[0]
    maps = [render_volume(coords, weights, 0.025 * box, box),
            render_volume(coords[~moving], weights[~moving], 0.025 * box, box),
            render_volume(swung, weights, 0.025 * box, box)]
    paths = []
    for i, v in enumerate(maps):
        paths.append(out / ("vol_%d.mrc" % i))
        write_mrc(paths[-1], v.numpy(), apix)
    data = out / "data"
    assert run_cli("simulate", "--out", data, "--n", n, "--box", box, "--apix", apix,
                   "--snr", snr, "--seed", seed, "--volumes", *paths) == 0
    return data
