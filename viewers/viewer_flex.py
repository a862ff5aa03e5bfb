"""Scipion viewers of flexplugin ("Analyze Results" and the output context menus).

Each opens one of the Qt windows (landscape, maps, training curves, segments) in a process of its own
(``python -m flexplugin.viewers.app``), so Qt never shares Scipion's Tk process. They read only
the outputs' common model (SetOfParticlesFlex, SetOfVolumesFlex, metrics.json): the same for every
method.
"""
import os
import subprocess
import sys

import pyworkflow.protocol.params as params
from pwem.objects import VolumeMask
from pwem.objects.data_flexhub import SetOfParticlesFlex, SetOfVolumesFlex
from pwem.viewers import EmProtocolViewer
from pyworkflow.viewer import DESKTOP_TKINTER, WEB_DJANGO, View, Viewer

from flexplugin.protocols import ProtFlexCryoSphere, ProtFlexLandscape, ProtFlexTrainBase
from flexplugin.protocols.protocol_cryosphere import MOTIONS_FILE

from .app import saved_plots
from .chimerax import chimerax_executable


class AppView(View):
    """Starts ``python -m flexplugin.viewers.app <args>`` in the project folder."""

    def __init__(self, args, cwd=None):
        self.args, self.cwd = [str(a) for a in args], cwd

    def command(self):
        return [sys.executable, "-m", "flexplugin.viewers.app"] + self.args

    def show(self):
        return subprocess.Popen(self.command(), cwd=self.cwd)


def _projectPath(viewer):
    return viewer.getProject().getPath()


def _outputView(viewer, kind, prot, outputName):
    return AppView([kind, "--project", _projectPath(viewer), "--protocol", prot.getObjId(),
                    "--output", outputName], cwd=_projectPath(viewer))


def _objectView(viewer, kind, obj):
    """The window for an output object (its run and attribute name come from the object)."""
    prot = viewer.getProject().getProtocol(obj.getObjParentId())
    return _outputView(viewer, kind, prot, obj.getLastName())


class FlexLandscapeViewer(Viewer):
    """The conformational landscape of particles with latent vectors: colour, select, decode."""
    _label = "flexplugin landscape"
    _targets = [SetOfParticlesFlex]
    _environments = [DESKTOP_TKINTER, WEB_DJANGO]

    def _visualize(self, obj, **kwargs):
        return [_objectView(self, "landscape", obj)]


class FlexVolumesViewer(Viewer):
    """Maps in orthogonal slices and as an isosurface; a set plays as a movie."""
    _label = "flexplugin maps"
    _targets = [SetOfVolumesFlex, VolumeMask]
    _environments = [DESKTOP_TKINTER, WEB_DJANGO]

    def _visualize(self, obj, **kwargs):
        return [_objectView(self, "volumes", obj)]


class FlexTrainingViewer(EmProtocolViewer):
    """Results of a training run: loss curves, the latent landscape and the consensus map."""
    _label = "training results"           # Scipion shows "flexplugin - training results"
    _targets = [ProtFlexTrainBase]
    _environments = [DESKTOP_TKINTER, WEB_DJANGO]

    def _defineParams(self, form):
        form.addSection(label="Results")
        form.addParam("showCurves", params.LabelParam, label="Training curves",
                      help="Loss and its terms per epoch (metrics.json); follows a running training.")
        form.addParam("showLandscape", params.LabelParam, label="Latent landscape",
                      help="The particles' latent vectors (principal components; run a landscape "
                           "analysis for UMAP and clusters). Click to decode a map, select to subset.")
        form.addParam("showConsensus", params.LabelParam, label="Consensus map",
                      help="The map decoded at the mean latent vector.")

    def _getVisualizeDict(self):
        return {"showCurves": self._showCurves, "showLandscape": self._showLandscape,
                "showConsensus": self._showConsensus}

    def _showCurves(self, param=None):
        metrics = self.protocol._outDir("metrics.json")
        if not os.path.exists(metrics):
            return [self.errorMessage("No training epoch finished yet (%s)." % metrics)]
        return [AppView(["training", "--metrics", os.path.abspath(metrics),
                         "--title", self.protocol.getRunName()], cwd=_projectPath(self))]

    def _needs(self, output):
        if not self.protocol.hasAttribute(output):
            return [self.errorMessage("The run has no %s yet." % output)]
        return None

    def _showLandscape(self, param=None):
        return self._needs("outputParticles") or [_outputView(self, "landscape", self.protocol, "outputParticles")]

    def _showConsensus(self, param=None):
        return self._needs("outputVolume") or [_outputView(self, "volumes", self.protocol, "outputVolume")]


class FlexCryoSphereViewer(FlexTrainingViewer):
    """Results of a cryoSPHERE run: those of every training run, the segmentation with each
    segment's motion along the landscape, and the models at the k-means centres."""
    _label = "cryoSPHERE results"
    _targets = [ProtFlexCryoSphere]

    def _defineParams(self, form):
        FlexTrainingViewer._defineParams(self, form)
        form.addParam("showSegments", params.LabelParam, label="Segments and their motions",
                      help="The input model coloured by segment, and each segment's rotation angle and "
                           "translation along the landscape (first principal component of z, or any "
                           "latent component), with a table of the segments.")
        form.addParam("showModels", params.LabelParam, label="Models at k-means centres",
                      help="The models decoded at the k-means centres of the latent space: opened in "
                           "ChimeraX (coloured by segment) when ChimeraX is found, otherwise listed.")

    def _getVisualizeDict(self):
        return dict(FlexTrainingViewer._getVisualizeDict(self), showSegments=self._showSegments,
                    showModels=self._showModels)

    def _segmentsView(self, *extra):
        return AppView(["segments", "--project", _projectPath(self), "--protocol", self.protocol.getObjId()]
                       + list(extra), cwd=_projectPath(self))

    def _showSegments(self, param=None):
        motions = self.protocol._outDir(MOTIONS_FILE)
        if not os.path.exists(motions):
            return [self.errorMessage("The run has no segmentation yet (%s)." % motions)]
        return [self._segmentsView()]

    def _showModels(self, param=None):
        missing = self._needs("outputStructures")
        if missing:
            return missing
        if chimerax_executable():
            return [self._segmentsView("--chimerax")]
        files = [os.path.abspath(os.path.join(_projectPath(self), m.getFileName()))
                 for m in self.protocol.outputStructures]
        return [self.infoMessage("ChimeraX was not found. The models at the k-means centres:\n\n%s\n\n"
                                 "'Segments and their motions' shows the segmentation."
                                 % "\n".join(files), title="cryoSPHERE models")]


class FlexLandscapeProtocolViewer(EmProtocolViewer):
    """Results of a landscape analysis: the landscape, the class maps, the traversals and the plots
    the analysis saved."""
    _label = "landscape results"
    _targets = [ProtFlexLandscape]
    _environments = [DESKTOP_TKINTER, WEB_DJANGO]

    def _traversals(self):
        return [name for name, _ in self.protocol.iterOutputAttributes(SetOfVolumesFlex)]

    def _defineParams(self, form):
        form.addSection(label="Results")
        form.addParam("showLandscape", params.LabelParam, label="Landscape",
                      help="Particles on the landscape, coloured by k-means class. Click to decode a map; "
                           "select with the rectangle or lasso and 'Create subset' to get a subset run.")
        form.addParam("showClasses", params.LabelParam, label="Class maps",
                      help="The map of each k-means class (a movie through the classes, each labelled "
                           "with its class number and particle count).")
        choices = self._traversals() or ["(none)"]
        form.addParam("traversal", params.EnumParam, choices=choices, default=0, label="Traversal",
                      help="Maps along a principal component or a path, played as a movie.")
        plots = [title for title, _ in self._savedPlots()] or ["(none)"]
        form.addParam("savedPlot", params.EnumParam, choices=plots, default=0, label="Saved plot",
                      help="The pictures the analysis saved: the landscape (where the particles are "
                           "dense, and the k-means classes), how much of the latent space's variance "
                           "each principal component explains, and how many particles each k-means "
                           "class holds. The picture opens in a window of its own.")

    def _getVisualizeDict(self):
        return {"showLandscape": self._showLandscape, "showClasses": self._showClasses,
                "traversal": self._showTraversal, "savedPlot": self._showSavedPlot}

    def _savedPlots(self):
        return saved_plots(self.protocol._outDir())

    def _showLandscape(self, param=None):
        return [_outputView(self, "landscape", self.protocol, "outputParticles")]

    def _showClasses(self, param=None):
        if not self.protocol.hasAttribute("outputClasses"):
            return [self.errorMessage("The analysis made no classes (k-means clusters = 0).")]
        return [_outputView(self, "volumes", self.protocol, "outputClasses")]

    def _showTraversal(self, param=None):
        names = self._traversals()
        if not names:
            return [self.errorMessage("The analysis made no traversal.")]
        return [_outputView(self, "volumes", self.protocol, names[self.traversal.get()])]

    def _showSavedPlot(self, param=None):
        plots = self._savedPlots()
        if not plots:
            return [self.errorMessage("The analysis saved no plot (has it finished?).")]
        title, path = plots[min(self.savedPlot.get(), len(plots) - 1)]
        return [AppView(["plot", "--files", os.path.abspath(path), "--names", title,
                         "--title", "%s \u2014 %s" % (self.protocol.getRunName(), title)],
                        cwd=_projectPath(self))]
