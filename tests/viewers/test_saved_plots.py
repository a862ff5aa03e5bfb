"""The plots a landscape analysis saves, offered by its "Analyze Results" viewer and shown by the
app's plot window (offscreen)."""
import os

import pytest

QtWidgets = pytest.importorskip("PyQt5.QtWidgets")

from viewer_helpers import SAVED_PLOTS, Obj, landscape_run  # noqa: E402


def _viewer(project, prot):
    """The landscape analysis viewer as Scipion makes it for ``prot`` (a finished run)."""
    from flexplugin.viewers.viewer_flex import FlexLandscapeProtocolViewer
    viewer = object.__new__(FlexLandscapeProtocolViewer)
    viewer._tkRoot = None
    viewer.protocol = prot
    viewer.getProject = lambda: project
    return viewer


def test_analyze_results_offers_the_saved_plots(qapp, tmp_path, monkeypatch):
    pytest.importorskip("pwem")
    from pyworkflow.object import Integer
    from pyworkflow.protocol.params import Form
    from pyworkflow.viewer import MessageView

    from flexplugin.viewers import app
    from flexplugin.viewers.viewer_flex import AppView
    project, prot, _ = landscape_run(tmp_path, n=12, plots=True)
    folder = os.path.join(project.path, prot.workingDir, "extra", "landscape")
    prot._outDir = lambda *paths: os.path.join(folder, *paths)
    prot.iterOutputAttributes = lambda cls: iter([])
    viewer = _viewer(Obj(path=project.path), prot)
    form = Form(None)
    viewer._defineParams(form)
    titles = ["Landscape: particle density and k-means classes", "Explained variance of the principal components",
              "Particles in each k-means class"]
    assert form.getParam("savedPlot").choices == titles                   # in the order the analysis wrote them
    assert "savedPlot" in viewer._getVisualizeDict()

    viewer.savedPlot = Integer(1)
    (view,) = viewer._showSavedPlot()
    assert isinstance(view, AppView) and view.cwd == project.path
    picture = os.path.join(folder, "pca_variance.png")
    assert view.args == ["plot", "--files", picture, "--names", titles[1],
                         "--title", "flexplugin - landscape analysis \u2014 " + titles[1]]
    shown = []
    monkeypatch.setattr(app, "_show", lambda qt, window: shown.append(window) or 0)
    assert app.main(view.args) == 0                                       # what the view starts
    (win,) = shown
    assert win.windowTitle() == view.args[-1] and win.tabs.tabText(0) == titles[1]
    height, width = SAVED_PLOTS["pca_variance.png"]
    assert (win.pixmaps[0].height(), win.pixmaps[0].width()) == (height, width)
    assert win.statusBar().currentMessage() == picture
    win.close()

    os.remove(os.path.join(folder, "cluster_sizes.png"))                  # a plot gone: not offered
    assert [t for t, _ in viewer._savedPlots()] == titles[:2]
    os.remove(os.path.join(folder, "analysis.json"))                      # no analysis (yet)
    form = Form(None)
    viewer._defineParams(form)
    assert form.getParam("savedPlot").choices == ["(none)"]
    (view,) = viewer._showSavedPlot()
    assert isinstance(view, MessageView) and "saved no plot" in view.getMessage()
