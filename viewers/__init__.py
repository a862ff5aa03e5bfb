"""Viewers of flexplugin (discovered by Scipion as ``flexplugin.viewers``): Scipion viewer classes
(viewer_flex) that open the Qt windows (landscape_window, volume_window, training_window,
segments_window) in a process of their own (app).

The viewer classes are imported on first use (PEP 562 ``__getattr__`` and ``__dir__``, which
Scipion's discovery, ``inspect.getmembers``, goes through): the window program
``python -m flexplugin.viewers.app`` imports this package first and would otherwise load
pyworkflow and pwem before it can show anything."""
VIEWERS = ("FlexCryoSphereViewer", "FlexLandscapeProtocolViewer", "FlexLandscapeViewer",
           "FlexTrainingViewer", "FlexVolumesViewer")
__all__ = list(VIEWERS)


def __getattr__(name):
    if name in VIEWERS:
        from . import viewer_flex
        return getattr(viewer_flex, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def __dir__():
    return sorted(set(globals()) | set(VIEWERS))
