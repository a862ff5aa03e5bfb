"""GUI: under Xvfb the Scipion project window opens, its "flexplugin" section lists our protocols
and each protocol's form opens. Screenshots go to tests/artifacts/."""
import json
import os
import shutil
import subprocess
import sys

import pytest

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "artifacts")
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gui_driver.py")


def conf_protocols():
    """Protocol class names of the flexplugin section of protocols.conf, in order."""
    import configparser
    import flexplugin
    conf = configparser.ConfigParser()
    conf.optionxform = str
    conf.read(os.path.join(os.path.dirname(flexplugin.__file__), "protocols.conf"))
    tree = json.loads(conf["PROTOCOLS"]["Protocols SPA"])
    return [item["value"] for item in tree[0]["children"] if item["tag"] == "protocol"]


@pytest.mark.skipif(not (shutil.which("xvfb-run") and shutil.which("import")),
                    reason="needs xvfb-run and imagemagick (see .ci/run)")
def test_project_window_and_forms(sim):
    project, _ = sim
    os.makedirs(ARTIFACTS, exist_ok=True)
    for f in os.listdir(ARTIFACTS):
        if f.startswith("gui_"):
            os.remove(os.path.join(ARTIFACTS, f))
    env = dict(os.environ, SCIPION_DEBUG="1")     # pw_project without -O re-launches scipion
    proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, DRIVER,
                           project.getShortName(), ARTIFACTS], env=env, capture_output=True, text=True,
                          timeout=180)
    report = os.path.join(ARTIFACTS, "gui.json")
    assert os.path.exists(report), proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(report) as f:
        result = json.load(f)
    print(result)
    import flexplugin.protocols
    classes = [getattr(flexplugin.protocols, name) for name in conf_protocols()]
    assert len(classes) >= 8
    assert result["section"] == [c.getClassLabel() for c in classes]
    assert len(result["forms"]) == len(classes)
    for cls, title in zip(classes, result["forms"]):
        assert cls.__name__ in title
    for tag in ["project"] + ["form_%d" % i for i in range(len(classes))]:
        assert os.path.getsize(os.path.join(ARTIFACTS, "gui_%s.png" % tag)) > 10000
