"""Viewers of flexplugin (discovered by Scipion as ``flexplugin.viewers``): Scipion viewer classes
(viewer_flex) that open the Qt windows (landscape_window, volume_window, training_window,
segments_window) in a process of their own (app)."""
from .viewer_flex import (FlexCryoSphereViewer, FlexLandscapeProtocolViewer, FlexLandscapeViewer,
                          FlexTrainingViewer, FlexVolumesViewer)
