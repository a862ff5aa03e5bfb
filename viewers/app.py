"""The flexplugin windows as a program of their own (Scipion's Tk GUI starts it as a subprocess,
so Qt never shares a process with Tk)::

    python -m flexplugin.viewers.app landscape --project DIR --protocol ID --output NAME
    python -m flexplugin.viewers.app volumes   --project DIR --protocol ID --output NAME
    python -m flexplugin.viewers.app volumes   --files a.mrc b.mrc ... [--mask m.mrc]
    python -m flexplugin.viewers.app training  --metrics metrics.json
    python -m flexplugin.viewers.app segments  --project DIR --protocol ID [--chimerax]
    python -m flexplugin.viewers.app segments  --train-dir DIR --structure model.pdb
    python -m flexplugin.viewers.app plot      --files landscape.png ... [--names ...]

The landscape window reads a ``SetOfParticlesFlex`` (latent vectors, landscape coordinates when
a landscape analysis made them, CTF), colours it by k-means class (when the set comes from a
landscape analysis with classes, numbered 1..K as the classes), defocus or latent component,
names its axes after the analysis ("UMAP 1", "PCA 1 (61% of variance)"), decodes maps through a
``flexplugin serve`` process started in the engine environment, and turns a selection into a
``ProtFlexSubset`` run of the project. The maps window labels each map of a class set
("class 2: 153 particles") and of a traversal ("PC1 = 1.23 (50th percentile)"). The plot window
shows pictures a run saved, e.g. those of a landscape analysis (:func:`saved_plots`).
``FLEXPLUGIN_SCREENSHOT=file.png`` writes a picture of the window once it is shown and closes it
(documentation and tests).

The program's first act is a small "Loading ..." window (:class:`~.loading.LoadingWindow`: a busy
cursor and a status line naming the step under way), up before pyworkflow, the data and the
plotting modules are loaded; it goes when the window with the content is shown. The landscape's
map decoder loads its model while the window is drawn (a click before it is ready waits for it).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from flexplugin.constants import (ANALYSIS_JSON, CLUSTER_SIZES_PLOT, LANDSCAPE_PLOT, PCA_FILE,
                                  PCA_VARIANCE_PLOT, Z_FILE)
from flexplugin.selection import write_ids


# ------------------------------------------------------------------------------- project data
def load_project(path):
    import pyworkflow as pw
    from pyworkflow.project import Project
    project = Project(pw.Config.getDomain(), os.path.abspath(path))
    project.load()
    return project


def landscape_folder(project, prot):
    """The folder of a landscape analysis run's results (``extra/landscape``; it may not exist)."""
    return _runPath(project, prot, "extra", "landscape")


def _runPath(project, prot, *paths):
    workingDir = prot.getWorkingDir()
    if not os.path.isabs(workingDir):
        workingDir = os.path.join(project.getPath(), workingDir)
    return os.path.join(workingDir, *paths)


def _analysis_json(folder):
    """``analysis.json`` of a landscape analysis folder (``flexplugin analyze``); None without."""
    path = os.path.join(folder, ANALYSIS_JSON)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_analysis(folder):
    """``analysis.json`` of a landscape analysis folder (``flexplugin analyze``) with ``"pca"`` added:
    the particles' principal-component coordinates (``pca.npy``, None without); None where the
    folder holds no analysis."""
    analysis = _analysis_json(folder)
    if analysis is None:
        return None
    pca = os.path.join(folder, PCA_FILE)
    analysis["pca"] = np.load(pca) if os.path.exists(pca) else None
    return analysis


PLOT_TITLES = {  # the plots flexplugin analyze saves, by file name
    LANDSCAPE_PLOT: "Landscape: particle density and k-means classes",
    PCA_VARIANCE_PLOT: "Explained variance of the principal components",
    CLUSTER_SIZES_PLOT: "Particles in each k-means class",
}


def saved_plots(folder):
    """``[(title, path), ...]``: the pictures a landscape analysis saved in ``folder`` (the PNG files
    its analysis.json lists, in the order it wrote them, where they still are); [] without an
    analysis."""
    plots = []
    for name in (_analysis_json(folder) or {}).get("files") or []:
        path = os.path.join(folder, name)
        if name.lower().endswith(".png") and os.path.exists(path):
            base = os.path.basename(name)
            title = PLOT_TITLES.get(base, os.path.splitext(base)[0].replace("_", " "))
            plots.append((title, path))
    return plots


def _ordinal(n):
    n = int(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return "%d%s" % (n, suffix)


def class_label(number, size):
    """"class 2: 153 particles" (classes numbered 1..K, as the landscape window numbers them)."""
    return "class %d: %s particle%s" % (number, format(int(size), ","), "" if size == 1 else "s")


def traversal_labels(analysis, name, n_maps, ids=None):
    """One label per map of the traversal ``name`` ("pc1", "pc2"... or "path") of a landscape
    analysis: "PC1 = 1.23 (50th percentile)" (the maps sit evenly from the 5th to the 95th
    percentile of the component; the percentile is the share of particles below the value), or
    "path: particle 12" (``ids``: the particle id of each row of z). None when ``analysis`` does not
    describe that traversal with ``n_maps`` maps."""
    if not analysis:
        return None
    if name == "path":
        rows = (analysis.get("path") or {}).get("indices")
        if rows is None or len(rows) != n_maps:
            return None
        return ["path: particle %s" % (ids[r] if ids is not None else r) for r in rows]
    span = (analysis.get("pc_traversals") or {}).get(name)
    if span is None or not name.startswith("pc") or n_maps < 1:
        return None
    k = int(name[2:]) - 1
    values = np.linspace(span[0], span[1], n_maps)
    values[np.abs(values) < 1e-9 * max(abs(span[0]), abs(span[1]))] = 0.0      # "PC1 = 0", not 1e-16
    pca = analysis.get("pca")
    labels = []
    for v in values:
        text = "PC%d = %.3g" % (k + 1, v)
        if pca is not None and pca.ndim == 2 and k < pca.shape[1]:
            text += " (%s percentile)" % _ordinal(round(100.0 * np.mean(pca[:, k] <= v)))
        labels.append(text)
    return labels


def landscape_data(flexSet, prot=None, analysis=None):
    """Arrays the landscape window shows: ids, z, zred, axis names and colour attributes.

    ``analysis``: the landscape analysis that made the zred (:func:`read_analysis`), for the axis
    names ("UMAP 1", "PCA 1 (61% of variance)"); without it zred's axes are "landscape 1"...
    Sets without zred are shown on the principal components of z."""
    from flexplugin.engine.analysis.landscape import axis_labels
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
        if analysis:
            axis = axis_labels(analysis.get("zred") == "umap", analysis.get("pca_variance") or [],
                               zred.shape[1])
        else:
            axis = ["landscape %d" % (k + 1) for k in range(zred.shape[1])]
    else:                             # no landscape analysis yet: the principal components of z
        zred, ratio = z_components(z)
        axis = axis_labels(False, ratio, zred.shape[1])
        if zred.shape[1] == 1:
            zred = np.column_stack([zred[:, 0], np.zeros(len(zred))])
            axis.append("(no second component)")
    attributes = {}
    classes = getattr(prot, "outputClasses", None) if prot is not None else None
    if classes is not None:
        row = {int(i): r for r, i in enumerate(ids)}
        cluster = np.zeros(len(ids), dtype=np.int64)
        for cls in classes:                   # class k of the set: k-means cluster k - 1 of the analysis
            for p in cls.iterItems():
                if p.getObjId() in row:
                    cluster[row[p.getObjId()]] = cls.getObjId()
        attributes["class"] = cluster
    if np.isfinite(defocus).any():
        attributes["defocus (Å)"] = np.array(defocus, dtype=np.float64)
    for k, name in enumerate(labels[:8]):
        attributes[name] = z[:, k]
    return ids, z, zred, axis, attributes


def z_components(z, n=3):
    """The landscape of a set without one: ``(scores (N, k), explained variance ratio)`` on the
    first ``k = min(n, N, zdim)`` principal components of z (:func:`flexplugin.engine.analysis.pca.
    pca`, signs as the SVD returns them); zeros in ``min(n, zdim)`` columns and no ratio for fewer
    than two points, no ratio when z does not vary."""
    from flexplugin.engine.analysis.pca import pca
    if len(z) < 2 or not z.shape[1]:
        return np.zeros((len(z), min(n, z.shape[1]))), np.zeros(0)
    scores, _, ratio, _ = pca(z, n, orient=False)
    return scores, (ratio if ratio.any() else np.zeros(0))


def decoder_for(flexSet, wait=True):
    """A DecoderClient running ``flexplugin serve`` on the set's model in the engine environment
    (``wait`` False: returned as soon as the server is started; it loads the model meanwhile)."""
    from flexplugin import Plugin
    from .serve_client import DecoderClient
    model = flexSet.getFlexInfo().getAttr("modelPath")
    line = Plugin.getEngineCommand("serve", ["--model", model])
    return DecoderClient(["bash", "-c", line], env=dict(Plugin.getEnviron()), wait=wait)


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
    from .ca_trace import read_ca_trace
    table = np.loadtxt(os.path.join(folder, "segments.txt"), dtype=np.int64, ndmin=2)
    coords, numbers, chains = read_ca_trace(structure)
    rows = match_residues(table[:, 0], numbers)
    with np.load(os.path.join(folder, "segment_motions.npz")) as motions:
        angle, translation = motions["angle_deg"], motions["translation_A"]
    return dict(coords=coords[rows], segments=table[:, 1], numbers=table[:, 0], chains=chains[rows],
                angle_deg=angle, translation_A=translation, z=np.load(os.path.join(folder, Z_FILE)))


# ------------------------------------------------------------------------------- windows
_loading = None           # the "Loading ..." window while the content is made (main)


def _app():
    from PyQt5 import QtWidgets
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])


def _step(text):
    """Say on the "Loading ..." window what is being done."""
    if _loading is not None:
        _loading.step(text)


def _loaded():
    """The content is shown: the "Loading ..." window goes."""
    global _loading
    if _loading is not None:
        _loading.finish()
        _loading = None


def _show(app, window):
    window.show()
    _loaded()
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
    _step("Reading the project\u2026")
    project = load_project(a.project)
    prot = project.getProtocol(a.protocol)
    flexSet = getattr(prot, a.output)
    _step("Reading %s particles\u2026" % format(flexSet.getSize(), ","))
    analysis = read_analysis(landscape_folder(project, prot))
    ids, z, zred, axis, attributes = landscape_data(flexSet, prot, analysis)
    app = _app()
    # the decoder loads its model while the window is drawn and looked at (a click waits for it)
    decoder = decoder_for(flexSet, wait=False) if z.shape[1] and not a.no_decoder else None
    try:
        _step("Drawing the landscape\u2026")
        from .landscape_window import LandscapeWindow
        folder = _runPath(project, prot, "extra", "selections")
        os.makedirs(folder, exist_ok=True)
        window = LandscapeWindow(zred, z=z, ids=ids, attributes=attributes, decoder=decoder,
                                 on_subset=subset_launcher(project, prot, a.output, folder), axis_labels=axis,
                                 color_by="class" if "class" in attributes else None,
                                 apix=flexSet.getSamplingRate() * flexSet.getXDim()
                                 / flexSet.getFlexInfo().getAttr("boxSize"),
                                 title=a.title or "%s \u2014 landscape (%s)" % (prot.getRunName(), a.output))
        if decoder is not None and os.environ.get("FLEXPLUGIN_SCREENSHOT"):
            window.pick_index(0)
            window.wait_for_decode()
        return _show(app, window)
    finally:
        if decoder is not None:
            decoder.close()


def output_maps(project, prot, outputName):
    """(files, one label per map, voxel size, what they are) of a run's output: the maps of a class
    set ("class 2: 153 particles"), of a landscape analysis traversal ("PC1 = 1.23 (50th
    percentile)", "path: particle 12"), or of any volume or set of volumes."""
    obj = getattr(prot, outputName)
    files, labels, apix = [], [], None
    series = hasattr(obj, "__iter__")
    for item in (obj if series else [obj]):
        if hasattr(item, "getRepresentative"):          # a class: its map
            vol = item.getRepresentative()
            labels.append(class_label(item.getObjId(), item.getSize()))
        else:
            vol = item
            labels.append("%s %d" % (outputName, item.getObjId() or 1) if series else outputName)
        files.append(os.path.join(project.getPath(), vol.getFileName()))
        apix = apix or vol.getSamplingRate()
    what = "class maps" if outputName == "outputClasses" else outputName
    if outputName.startswith("outputTraversal"):
        name = outputName[len("outputTraversal"):].lower()
        ids_file = _runPath(project, prot, "extra", "ids.npy")
        ids = np.load(ids_file) if os.path.exists(ids_file) else None
        analysis = read_analysis(landscape_folder(project, prot))
        labels = traversal_labels(analysis, name, len(files), ids) or labels
        what = "maps along %s" % ("the path" if name == "path" else name.upper())
    return files, labels, apix, what


def run_volumes(a):
    files, labels, mask, apix, title = list(a.files or []), None, a.mask, None, a.title
    if a.project:
        _step("Reading the project\u2026")
        project = load_project(a.project)
        prot = project.getProtocol(a.protocol)
        files, labels, apix, what = output_maps(project, prot, a.output)
        title = title or "%s \u2014 %s" % (prot.getRunName(), what)
    app = _app()
    _step("Reading %d map%s\u2026" % (len(files), "" if len(files) == 1 else "s"))
    from .volume_window import VolumeWindow
    window = VolumeWindow(files, labels=labels, mask=mask, apix=apix, title=title or "flexplugin maps")
    return _show(app, window)


def run_training(a):
    app = _app()
    _step("Reading %s\u2026" % os.path.basename(a.metrics))
    from .training_window import TrainingWindow
    window = TrainingWindow(a.metrics, title=a.title, follow=True)
    return _show(app, window)


def run_segments(a):
    folder, structure, models, title = a.train_dir, a.structure, [], a.title
    if a.project:
        _step("Reading the project\u2026")
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
    _step("Reading the segmentation\u2026")
    data = segments_data(folder, structure)
    if a.chimerax:
        from .chimerax import chimerax_models_command
        cmd = chimerax_models_command(models, data["numbers"], data["segments"])
        if cmd is None:
            raise SystemExit("segments: no ChimeraX on PATH, or the run has no models")
        subprocess.Popen(cmd)
        return 0
    app = _app()
    _step("Drawing the segments\u2026")
    from .segments_window import SegmentsWindow
    return _show(app, SegmentsWindow(title=title, models=models, **data))


def run_plot(a):
    app = _app()
    _step("Reading the picture%s\u2026" % ("" if len(a.files) == 1 else "s"))
    from .plot_window import PlotWindow
    return _show(app, PlotWindow(a.files, names=a.names, title=a.title))


LOADING = {"landscape": "the landscape", "volumes": "the maps", "training": "the training curves",
           "segments": "the segments", "plot": "the pictures"}     # "Loading the maps ..."


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m flexplugin.viewers.app", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="kind", required=True)
    for kind, func in (("landscape", run_landscape), ("volumes", run_volumes), ("training", run_training),
                       ("segments", run_segments), ("plot", run_plot)):
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
        if kind == "plot":
            s.add_argument("--files", nargs="+", required=True, help="pictures (PNG), one tab each")
            s.add_argument("--names", nargs="+", help="one tab name per picture")
    a = p.parse_args(argv)
    global _loading
    # ChimeraX opens instead of a window; the QApplication is held here (it lives while referenced)
    qt = None if getattr(a, "chimerax", False) else _app()
    if qt is not None:
        from .loading import LoadingWindow
        _loading = LoadingWindow(LOADING[a.kind]).start()
    try:
        return a.func(a)
    finally:
        _loaded()


if __name__ == "__main__":
    sys.exit(main())
