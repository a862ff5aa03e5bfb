"""The package as a user installs it: entry points, the two worlds kept apart, the CLI's errors."""
import os
import subprocess
import sys
from importlib import metadata

import flexplugin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_entry_points():
    eps = metadata.entry_points()
    plugins = {e.name: e.value for e in eps.select(group="pyworkflow.plugin")}
    assert plugins.get("flexplugin") == "flexplugin"
    scripts = {e.name: e.value for e in eps.select(group="console_scripts")}
    assert scripts.get("flexplugin") == "flexplugin.engine.cli:main"
    assert metadata.version("scipion-em-flexplugin") == flexplugin.__version__


def test_protocols_and_viewers_map_to_top_level_folders():
    import flexplugin.protocols
    import flexplugin.viewers
    assert os.path.dirname(flexplugin.protocols.__file__) == os.path.join(ROOT, "protocols")
    assert os.path.dirname(flexplugin.viewers.__file__) == os.path.join(ROOT, "viewers")


def _modules_after(code):
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_never_imports_scipion():
    mods = _modules_after("import flexplugin.engine.cli, flexplugin.engine.reconstruct, "
                          "flexplugin.engine.simulate, flexplugin.engine.io")
    assert not {m for m in mods if m.split(".")[0] in ("pyworkflow", "pwem")}


def test_package_import_is_lazy():
    mods = _modules_after("import flexplugin")
    assert "pwem" not in mods and "torch" not in mods


def test_cli_reports_bad_input_in_one_line(tmp_path):
    missing = tmp_path / "nothing here.star"
    r = subprocess.run([sys.executable, "-m", "flexplugin.engine.cli", "check", str(missing)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert str(missing) in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "p.star"
    bad.write_text("data_particles\nloop_\n_rlnAngleRot #1\n10.0\n")
    r = subprocess.run([sys.executable, "-m", "flexplugin.engine.cli", "reconstruct", "--particles", str(bad),
                        "--out", str(tmp_path / "m.mrc")], capture_output=True, text=True)
    assert r.returncode == 2 and str(bad) in r.stderr and "rlnImageName" in r.stderr
    assert "Traceback" not in r.stderr
