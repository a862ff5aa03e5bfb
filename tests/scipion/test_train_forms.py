"""The training forms against the engine (no training): every parameter that maps to an engine
option has the default of the method's Config, the default form gives the engine's default
hyper-parameters, the image options reach ``flexplugin train`` only when changed, and the
Scipion side imports no torch."""
import dataclasses
import subprocess
import sys

import pyworkflow.protocol.params as params
import pytest

from flexplugin.protocols import ProtFlexCryoDrgn, ProtFlexCryoSphere, ProtFlexHetAcumn, ProtFlexHetSiren

TRAINING = [ProtFlexCryoDrgn, ProtFlexHetAcumn, ProtFlexCryoSphere, ProtFlexHetSiren]
ENGINE_ARGS = ["--particles", "p.star", "--out", "out", "--epochs", "1"]


def _formValue(prot, name):
    """A parameter's value as the engine option gets it (an EnumParam: the text of its choice)."""
    value = getattr(prot, name).get()
    param = prot.getParam(name)
    return param.choices[value] if isinstance(param, params.EnumParam) else value


def _engineConfig(method, args):
    """The Config ``flexplugin train <method> <args>`` would train with (as cmd_train builds it)."""
    from flexplugin.engine.cli import INPUT_FLAGS, build_parser
    from flexplugin.engine.methods import METHODS
    inputs = [w for key in METHODS[method].requires for w in (INPUT_FLAGS[key], "input")]
    a = build_parser().parse_args(["train", method] + ENGINE_ARGS + inputs + [str(v) for v in args])
    cls = METHODS[method].Config
    return cls(**{f.name: getattr(a, f.name) for f in dataclasses.fields(cls)
                  if getattr(a, f.name) is not None})


@pytest.mark.parametrize("protClass", TRAINING, ids=lambda c: c._method)
def test_form_defaults_are_the_engine_config_defaults(protClass):
    from flexplugin.engine.methods import METHODS
    config = METHODS[protClass._method].Config
    assert protClass._config is config
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    prot = protClass()
    assert prot.zDim.get() == defaults["zdim"]
    assert prot.batchSize.get() == 0 and "%d)" % defaults["batch_size"] in prot.getParam("batchSize").help.get()
    assert protClass._methodOptions
    for name, option in protClass._methodOptions.items():
        field = option[2:].replace("-", "_")
        if field in defaults:
            expected = defaults[field]
        else:                                   # --no-x of a boolean field x
            assert option.startswith("--no-") and isinstance(defaults[field[3:]], bool), option
            expected = not defaults[field[3:]]
        assert _formValue(prot, name) == expected, (name, option)
        assert prot.getParam(name).help.get(), name
    # the default form trains the engine's default model
    args = ["--zdim", prot.zDim.get()] + prot._methodArgs()
    assert _engineConfig(protClass._method, args) == config()


def test_hetacumn_frozen_epochs_default_is_the_engine_s():
    prot = ProtFlexHetAcumn()
    assert prot.frozenEpochs.get() == ProtFlexHetAcumn._config().fch_epochs == 50
    assert prot.useInputPoses.get() is False and ProtFlexHetAcumn._config().ignore_poses is True


@pytest.mark.parametrize("protClass, name, value, field", [
    (ProtFlexCryoDrgn, "klWeight", 0.5, "beta"),
    (ProtFlexHetAcumn, "klWeight", 1e-3, "lambda_z"),
    (ProtFlexHetSiren, "l1Weight", 0.0, "l1"),
    (ProtFlexHetSiren, "changeWeight", 0.0, "delta_l2"),
    (ProtFlexCryoSphere, "clashWeight", 0.1, "clash_weight"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_regularisation_weight_reaches_the_engine(protClass, name, value, field):
    prot = protClass()
    param = prot.getParam(name)
    assert param.expertLevel.get() == params.LEVEL_ADVANCED and param.help.get()
    getattr(prot, name).set(value)
    assert not param.validate(value)
    config = _engineConfig(protClass._method, prot._methodArgs())
    assert getattr(config, field) == value
    assert config == dataclasses.replace(protClass._config(), **{field: value})


def test_cryodrgn_kl_weight_empty_is_one_over_zdim():
    prot = ProtFlexCryoDrgn()
    param = prot.getParam("klWeight")
    assert prot.klWeight.get() is None and "1 / latent dimension" in param.help.get()
    assert "--beta" not in prot._methodArgs()
    assert not param.validate(None) and param.validate(-1.0)


def test_image_options_reach_the_engine_only_when_changed(tmp_path, monkeypatch):
    prot = ProtFlexCryoDrgn()
    monkeypatch.setattr(prot, "_particlesStar", lambda: str(tmp_path / "particles.star"))
    monkeypatch.setattr(prot, "_outDir", lambda *p: str(tmp_path.joinpath("train", *p)))
    for name in ("invertContrast", "softWindow"):
        assert prot.getParam(name).help.get(), name
    assert prot.invertContrast.get() is False and prot.softWindow.get() is True
    args = [str(a) for a in prot._trainArgs()]
    assert "--invert" not in args and "--no-window" not in args
    prot.invertContrast.set(True)
    prot.softWindow.set(False)
    args = [str(a) for a in prot._trainArgs()]
    assert "--invert" in args and "--no-window" in args
    from flexplugin.engine.cli import build_parser
    a = build_parser().parse_args(["train"] + args)
    assert a.invert and a.no_window


def test_protocols_and_configs_import_no_torch():
    code = ("import sys, flexplugin.engine.configs, flexplugin.protocols; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("cls", TRAINING, ids=[c.__name__ for c in TRAINING])
def test_untouched_form_passes_its_own_checks_on_epochs(cls):
    """The default epochs outlast any frozen-head period the method's defaults set."""
    prot = cls()
    epochs = prot.numEpochs.get()
    frozen = prot.frozenEpochs.get() if hasattr(prot, "frozenEpochs") else 0
    assert epochs > frozen
