"""What every flexplugin protocol that runs the engine on particles shares: the input particles,
the GPU parameters, the conversion to ``extra/particles.star`` and the engine call."""
import pyworkflow.protocol.params as params
from pwem.objects import Volume
from pwem.protocols import EMProtocol

from flexplugin import Plugin
from flexplugin.constants import PARTICLES_STAR
from flexplugin.convert import writeParticlesStar


class ProtFlexEngineBase(EMProtocol):
    """Base of the protocols running ``flexplugin <command>`` on a set of particles (not runnable)."""
    _label = None                     # base class: not offered in the GUI
    _requiresAlignment = True         # the input particles must carry projection alignment
    _trainsOnGpu = False              # the form offers the CPU fall-back choice (training protocols)

    # ------------------------------------------------------------------------- form
    def _defineGpuParams(self, form):
        form.addHidden(params.USE_GPU, params.BooleanParam, default=True, label="Use GPU?",
                       help="Run the engine on GPUs (CPU otherwise).")
        form.addHidden(params.GPU_LIST, params.StringParam, default="0", label="GPU IDs",
                       help="GPUs given to the engine (CUDA_VISIBLE_DEVICES), e.g. 0 or 0,1.")
        if self._trainsOnGpu:
            form.addParam("cpuFallback", params.BooleanParam, default=True,
                          label="Use the CPU if no GPU is available?",
                          help="With 'Use GPU' and no working GPU (no CUDA device, or a torch built "
                               "without CUDA): Yes trains on the CPU (much slower; the log and the "
                               "summary say so); No stops the run with an error naming the problem.")

    def _defineParticlesParam(self, form):
        form.addParam("inputParticles", params.PointerParam, pointerClass="SetOfParticles",
                      important=True, label="Input particles",
                      help="Particles with CTF%s. They are passed to the engine as a RELION 3.1 "
                           "star file pointing at the original stacks (MRC stacks are not copied)."
                           % (" and 3D alignment (angles and shifts)" if self._requiresAlignment
                              else ""))

    # ------------------------------------------------------------------------- steps
    def _particlesStar(self):
        return self._getExtraPath(PARTICLES_STAR)

    def convertInputStep(self):
        writeParticlesStar(self.inputParticles.get(), self._particlesStar(), self._getExtraPath())

    def _gpus(self):
        """GPU ids for CUDA_VISIBLE_DEVICES ('' = CPU only)."""
        return self.getGpuList() if self.useGpu else ""

    def _runEngine(self, command, args, processes=1):
        Plugin.runEngine(self, command, args, gpus=self._gpus(), processes=processes)

    def _newVolume(self, path, samplingRate, halves=None, volumeClass=Volume, **kwargs):
        """A Volume (or ``volumeClass``) for ``path`` with its sampling rate and half maps."""
        vol = volumeClass(**kwargs)
        vol.setFileName(path)
        vol.setSamplingRate(samplingRate)
        if halves:
            vol.setHalfMaps(halves)
        return vol

    # ------------------------------------------------------------------------- info
    def _validate(self):
        errors = []
        parts = self.inputParticles.get()
        if parts is None:
            return ["Input particles are missing."]
        if self._requiresAlignment and not parts.hasAlignmentProj():
            errors.append("The input particles have no 3D (projection) alignment.")
        if parts.getXDim() is not None and parts.getXDim() % 2:
            errors.append("The particle box (%d px) must be even." % parts.getXDim())
        return errors

    def _inputSummary(self):
        parts = self.inputParticles.get()
        return ("Input: %d particles, box %d px, %.3f Å/px."
                % (parts.getSize(), parts.getXDim(), parts.getSamplingRate())) if parts else ""
