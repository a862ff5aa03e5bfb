"""Scipion protocols of flexplugin (discovered by Scipion as ``flexplugin.protocols``)."""
from .protocol_base import ProtFlexEngineBase
from .protocol_create_mask import ProtFlexCreateMask
from .protocol_cryodrgn import ProtFlexCryoDrgn
from .protocol_cryosphere import ProtFlexCryoSphere
from .protocol_decode import ProtFlexDecode
from .protocol_hetacumn import ProtFlexHetAcumn
from .protocol_hetsiren import ProtFlexHetSiren
from .protocol_import_cryosparc import ProtFlexImportCryoSparc
from .protocol_landscape import ProtFlexLandscape
from .protocol_model_base import ProtFlexModelBase
from .protocol_predict import ProtFlexPredict
from .protocol_reconstruct import ProtFlexReconstruct
from .protocol_simulate import ProtFlexSimulate
from .protocol_subset import ProtFlexSubset
from .protocol_train_base import ProtFlexTrainBase
