"""The flexplugin windows as a program of their own (Scipion's Tk GUI starts it as a subprocess,
so Qt never shares a process with Tk)::

    python -m flexplugin.viewers.app landscape --project DIR --protocol ID --output NAME
    python -m flexplugin.viewers.app volumes   --project DIR --protocol ID --output NAME
    python -m flexplugin.viewers.app volumes   --files a.mrc b.mrc ... [--mask m.mrc]
    python -m flexplugin.viewers.app training  --metrics metrics.json
    python -m flexplugin.viewers.app segments  --project DIR --protocol ID [--chimerax]
    python -m flexplugin.viewers.app segments  --train-dir DIR --structure model.pdb

The landscape window reads a ``SetOfParticlesFlex`` (latent vectors, landscape coordinates when
a landscape analysis made them, CTF), colours it by cluster (when the set comes from a landscape
analysis with classes), defocus or latent component, decodes maps through a ``flexplugin serve``
process started in the engine environment, and turns a selection into a ``ProtFlexSubset`` run
of the project. ``FLEXPLUGIN_SCREENSHOT=file.png`` writes a picture of the window once it is
shown and closes it (documentation and tests).
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

from flexplugin.constants import Z_FILE
from flexplugin.selection import write_ids


# ------------------------------------------------------------------------------- project data
def load_project(path):
    import pyworkflow as pw
    from pyworkflow.project import Project
    project = Project(pw.Config.getDomain(), os.path.abspath(path))
    project.load()
    return project


def landscape_data(flexSet, prot=None):
    """Arrays the landscape window shows: ids, z, zred and colour attributes."""
    ids, z, zred, defocus = [], [], [], []
    for particle in flexSet.iterItems(orderBy="id"):
        ids.append(particle.getObjId())
        z.append(particle.getZFlex())
        zr = particle.getZRed()
        zred.append(zr if zr.size else None)
        ctf = particle.getCTF() if flexSet.hasCTF() else None
        defocus.append(ctf.getDefocusU() if ctf is not None else np.nan)
    ids = np.array(ids, dtype=np.int64)
    z = np.array(z, dtype=np.float64).reshape(len(ids), -1)
    labels = ["z%d" % (k + 1) for k in range(z.shape[1])]
    if all(r is not None for r in zred):
        zred = np.array(zred, dtype=np.float64)
        axis = ["landscape %d" % (k + 1) for k in range(zred.shape[1])]
    else:                             # no landscape analysis yet: the principal components of z
        zc = z - z.mean(0)
        vt = np.linalg.svd(zc, full_matrices=False)[2] if len(z) > 1 and z.shape[1] else np.eye(z.shape[1])
        zred = zc @ vt[:min(3, z.shape[1])].T
        if zred.shape[1] == 1:
            zred = np.column_stack([zred[:, 0], np.zeros(len(zred))])
        axis = ["PC %d" % (k + 1) for k in range(zred.shape[1])]
    attributes = {}
    classes = getattr(prot, "outputClasses", None) if prot is not None else None
    if classes is not None:
        row = {int(i): r for r, i in enumerate(ids)}
        cluster = np.zeros(len(ids), dtype=np.int64)
        for cls in classes:
            for p in cls.iterItems():
                if p.getObjId() in row:
                    cluster[row[p.getObjId()]] = cls.getObjId()
        attributes["cluster"] = cluster
    if np.isfinite(defocus).any():
        attributes["defocus (Å)"] = np.array(defocus, dtype=np.float64)
    for k, name in enumerate(labels[:8]):
        attributes[name] = z[:, k]
    return ids, z, zred, axis, attributes


def decoder_for(flexSet):
    """A DecoderClient running ``flexplugin serve`` on the set's model in the engine environment."""
    from flexplugin import Plugin
    from .serve_client import DecoderClient
    model = flexSet.getFlexInfo().getAttr("modelPath")
    line = Plugin.getEngineCommand("serve", ["--model", model])
    return DecoderClient(["bash", "-c", line], env=dict(Plugin.getEnviron()))


def selection_path(folder, name):
    """A new file for a selection: the name's letters and digits plus the time."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in (name or "selection"))[:40]
    return os.path.join(folder, "%s_%s.txt" % (stem, time.strftime("%Y%m%d-%H%M%S")))


def subset_launcher(project, prot, outputName, folder):
    """on_subset callback: write the selection and launch a ProtFlexSubset run on it."""
    def launch(ids, name):
        from flexplugin.protocols import ProtFlexSubset
        path = selection_path(folder, name)
        write_ids(path, ids, name or "selection")
        subset = project.newProtocol(ProtFlexSubset, source=1, selectionFile=path,
                                     subsetName=name or "", objLabel="subset %s" % (name or len(ids)))
        subset.inputParticles.set(prot)
        subset.inputParticles.setExtended(outputName)
        project.launchProtocol(subset)
        return subset
    return launch


def match_residues(wanted, numbers):
    """Rows of ``numbers`` (the model's C-alpha residue numbers, file order) holding the residues
    ``wanted`` (segments.txt), matched in order; ValueError for a residue the model lacks."""
    wanted, numbers = np.asarray(wanted), np.asarray(numbers)
    if len(wanted) == len(numbers) and np.array_equal(wanted, numbers):
        return np.arange(len(numbers))
    rows, j = [], 0
    for w in wanted:
        hits = np.flatnonzero(numbers[j:] == w)
        if not len(hits):
            raise ValueError("residue %d of the segmentation is not in the model (or out of order)" % w)
        j += int(hits[0])
        rows.append(j)
        j += 1
    return np.array(rows, dtype=np.int64)


def segments_data(folder, structure):
    """The segments window's arguments from a cryoSPHERE training folder (``segments.txt``,
    ``segment_motions.npz``, ``z.npy``) and its input model (PDB / mmCIF)."""
    from .segments_window import read_ca_trace
    table = np.loadtxt(os.path.join(folder, "segments.txt"), dtype=np.int64, ndmin=2)
    coords, numbers, chains = read_ca_trace(structure)
    rows = match_residues(table[:, 0], numbers)
    with np.load(os.path.join(folder, "segment_motions.npz")) as motions:
        angle, translation = motions["angle_deg"], motions["translation_A"]
    return dict(coords=coords[rows], segments=table[:, 1], numbers=table[:, 0], chains=chains[rows],
                angle_deg=angle, translation_A=translation, z=np.load(os.path.join(folder, Z_FILE)))


# ------------------------------------------------------------------------------- windows
def _app():
    from PyQt5 import QtWidgets
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])


def _show(app, window):
    window.show()
    shot = os.environ.get("FLEXPLUGIN_SCREENSHOT")
    if shot:
        for _ in range(20):
            app.processEvents()
            time.sleep(0.05)
        window.grab().save(shot)
        window.close()
        return 0
    return app.exec_()


def run_landscape(a):
    project = load_project(a.project)
    prot = project.getProtocol(a.protocol)
    flexSet = getattr(prot, a.output)
    ids, z, zred, axis, attributes = landscape_data(flexSet, prot)
    app = _app()
    from .landscape_window import LandscapeWindow
    decoder = decoder_for(flexSet) if z.shape[1] and not a.no_decoder else None
    folder = os.path.join(prot.getWorkingDir() if os.path.isabs(prot.getWorkingDir())
                          else os.path.join(project.getPath(), prot.getWorkingDir()), "extra", "selections")
    os.makedirs(folder, exist_ok=True)
    window = LandscapeWindow(zred, z=z, ids=ids, attributes=attributes, decoder=decoder,
                             on_subset=subset_launcher(project, prot, a.output, folder), axis_labels=axis,
                             color_by="cluster" if "cluster" in attributes else None,
                             apix=flexSet.getSamplingRate() * flexSet.getXDim()
                             / flexSet.getFlexInfo().getAttr("boxSize"),
                             title="%s — %s" % (prot.getRunName(), a.output))
    if decoder is not None and os.environ.get("FLEXPLUGIN_SCREENSHOT"):
        window.pick_index(0)
        window.wait_for_decode()
    try:
        return _show(app, window)
    finally:
        if decoder is not None:
            decoder.close()


def run_volumes(a):
    files, labels, mask, apix = list(a.files or []), None, a.mask, None
    if a.project:
        project = load_project(a.project)
        obj = getattr(project.getProtocol(a.protocol), a.output)
        items = list(obj) if hasattr(obj, "__iter__") else [obj]
        files = [os.path.join(project.getPath(), v.getFileName()) for v in items]
        labels = ["%s %d" % (a.output, v.getObjId() or 1) for v in items]
        apix = items[0].getSamplingRate()
    app = _app()
    from .volume_window import VolumeWindow
    window = VolumeWindow(files, labels=labels, mask=mask, apix=apix, title=a.title or "flexplugin maps")
    return _show(app, window)


def run_training(a):
    app = _app()
    from .training_window import TrainingWindow
    window = TrainingWindow(a.metrics, title=a.title, follow=True)
    return _show(app, window)


def run_segments(a):
    folder, structure, models, title = a.train_dir, a.structure, [], a.title
    if a.project:
        project = load_project(a.project)
        prot = project.getProtocol(a.protocol)

        def inProject(path):
            return path if os.path.isabs(path) else os.path.join(project.getPath(), path)
        folder = inProject(prot._outDir())
        structure = inProject(prot.inputStructure.get().getFileName())
        if prot.hasAttribute("outputStructures"):
            models = [inProject(m.getFileName()) for m in prot.outputStructures]
        title = title or "%s \u2014 segments" % prot.getRunName()
    if not folder or not structure:
        raise SystemExit("segments: give --project and --protocol, or --train-dir and --structure")
    data = segments_data(folder, structure)
    from .segments_window import SegmentsWindow, chimerax_models_command
    if a.chimerax:
        cmd = chimerax_models_command(models, data["numbers"], data["segments"])
        if cmd is None:
            raise SystemExit("segments: no ChimeraX on PATH, or the run has no models")
        subprocess.Popen(cmd)
        return 0
    app = _app()
    return _show(app, SegmentsWindow(title=title, models=models, **data))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m flexplugin.viewers.app", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="kind", required=True)
    for kind, func in (("landscape", run_landscape), ("volumes", run_volumes), ("training", run_training),
                       ("segments", run_segments)):
        s = sub.add_parser(kind)
        s.add_argument("--project", required=kind == "landscape", help="project folder")
        s.add_argument("--protocol", type=int, help="id of the run holding the output")
        s.add_argument("--output", help="output attribute name, e.g. outputParticles")
        s.add_argument("--title")
        s.set_defaults(func=func)
        if kind == "landscape":
            s.add_argument("--no-decoder", action="store_true", help="do not start a map decoder")
        if kind == "volumes":
            s.add_argument("--files", nargs="+", help="MRC maps (a series plays as a movie)")
            s.add_argument("--mask", help="mask MRC shown over the slices")
        if kind == "training":
            s.add_argument("--metrics", required=True, help="metrics.json of a training run")
        if kind == "segments":
            s.add_argument("--train-dir", help="a cryoSPHERE training folder (instead of --project)")
            s.add_argument("--structure", help="its input atomic model (PDB / mmCIF)")
            s.add_argument("--chimerax", action="store_true",
                           help="open the run's models in ChimeraX, coloured by segment, instead")
    a = p.parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
