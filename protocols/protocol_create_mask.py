"""ProtFlexCreateMask: a soft mask from a sphere or from a thresholded map (``flexplugin mask``)."""
import os

import pyworkflow.protocol.params as params
from pwem.objects import VolumeMask
from pwem.protocols import EMProtocol

from flexplugin import Plugin

SHAPES = ["sphere", "thresholded map"]


class ProtFlexCreateMask(EMProtocol):
    """Creates a soft-edged mask (values from 0 to 1) for the methods that focus on a region:
    a sphere placed in a reference map's box (centre in Å from the box centre, as read in the
    volume viewer), or the region of a map above a threshold, dilated. The mask has the map's box
    and voxel size."""
    _label = "create mask"
    _possibleOutputs = {"outputMask": "VolumeMask"}

    def _defineParams(self, form):
        form.addSection(label="Mask")
        form.addParam("inputVolume", params.PointerParam, pointerClass="Volume", important=True,
                      label="Reference map",
                      help="The mask gets this map's box and voxel size (and, for a thresholded "
                           "mask, its density).")
        form.addParam("shape", params.EnumParam, choices=SHAPES, default=0,
                      display=params.EnumParam.DISPLAY_HLIST, label="Mask from")
        form.addParam("center", params.StringParam, default="0 0 0", condition="shape == 0",
                      label="Centre (Å, x y z)",
                      help="Position of the sphere's centre relative to the box centre, in Å.")
        form.addParam("radius", params.FloatParam, default=20.0, condition="shape == 0",
                      validators=[params.Positive], label="Radius (Å)")
        form.addParam("threshold", params.FloatParam, default=0.0, condition="shape == 1",
                      label="Threshold", help="Density level: voxels above it are inside the mask.")
        form.addParam("dilation", params.FloatParam, default=3.0, condition="shape == 1",
                      validators=[params.GE(0)], label="Dilation (Å)",
                      help="Grow the thresholded region by this distance.")
        form.addParam("softEdge", params.FloatParam, default=6.0, validators=[params.GE(0)],
                      label="Soft edge (Å)", help="Width of the cosine fall-off from 1 to 0.")

    def _insertAllSteps(self):
        self._insertFunctionStep(self.createMaskStep, needsGPU=False)
        self._insertFunctionStep(self.createOutputStep, needsGPU=False)

    def _maskPath(self):
        return self._getExtraPath("mask.mrc")

    def _centre(self):
        values = [float(v) for v in self.center.get("").replace(",", " ").split()]
        if len(values) != 3:
            raise ValueError("three values")
        return values

    def createMaskStep(self):
        vol = self.inputVolume.get()
        args = ["--out", self._maskPath(), "--soft", self.softEdge.get()]
        if SHAPES[self.shape.get()] == "sphere":
            args += ["--sphere", "--box", vol.getXDim(), "--apix", vol.getSamplingRate(),
                     "--center=" + ",".join("%g" % v for v in self._centre()),    # "=": may start with "-"
                     "--radius", self.radius.get()]
        else:
            args += ["--map", os.path.abspath(vol.getFileName()), "--threshold", self.threshold.get(),
                     "--dilate", self.dilation.get()]
        Plugin.runEngine(self, "mask", args)

    def createOutputStep(self):
        mask = VolumeMask()
        mask.setFileName(self._maskPath())
        mask.setSamplingRate(self.inputVolume.get().getSamplingRate())
        self._defineOutputs(outputMask=mask)
        self._defineSourceRelation(self.inputVolume, mask)

    def _validate(self):
        errors = []
        if SHAPES[self.shape.get()] == "sphere":
            try:
                self._centre()
            except ValueError:
                errors.append("Centre: three numbers in Å (x y z), e.g. '0 0 12.5'.")
        return errors

    def _summary(self):
        if SHAPES[self.shape.get()] == "sphere":
            text = "Sphere of radius %.1f Å at (%s) Å from the box centre" % (self.radius.get(), self.center.get())
        else:
            text = "Map above %g, dilated by %.1f Å" % (self.threshold.get(), self.dilation.get())
        return ["%s, soft edge %.1f Å." % (text, self.softEdge.get())]

    def _methods(self):
        return ["A soft mask was created with flexplugin (%s)." % self._summary()[0].rstrip(".")]
