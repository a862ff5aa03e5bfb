"""Scipion protocols of flexplugin (discovered by Scipion as ``flexplugin.protocols``)."""
from .protocol_base import ProtFlexEngineBase
from .protocol_cryodrgn import ProtFlexCryoDrgn
from .protocol_import_cryosparc import ProtFlexImportCryoSparc
from .protocol_reconstruct import ProtFlexReconstruct
from .protocol_simulate import ProtFlexSimulate
from .protocol_train_base import ProtFlexTrainBase
