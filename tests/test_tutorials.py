"""The tutorials cannot rot: every ```bash block of every page of tutorials/ runs, in order, as one
script, with the tiny sizes the pages document (N, BOX, EPOCHS; DEMO_N, DEMO_BOX, DEMO_EPOCHS for
`make demo`), and the windows they open picture themselves and close (FLEXPLUGIN_SCREENSHOT,
DEMO_GUI_SCREENSHOT). Pages run in an empty temporary folder; the quick start runs in the
repository (it calls `make demo`), its outputs sent to a temporary DEMO_OUT."""
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = os.path.join(REPO, "tutorials")
TINY = {"N": "200", "BOX": "24", "EPOCHS": "1", "DEMO_N": "200", "DEMO_BOX": "24", "DEMO_EPOCHS": "1",
        "OMP_NUM_THREADS": "1", "DEMO_GUI_DELAY": "3"}
MAX_IMAGE_BYTES = 150_000


def bash_blocks(path):
    with open(path) as f:
        return re.findall(r"^```bash\n(.*?)^```", f.read(), re.M | re.S)


PAGES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(TUTORIALS, "*.md")) if bash_blocks(p))


def test_every_page_is_listed_and_its_links_resolve():
    expected = {"quickstart.md", "cryodrgn.md", "hetsiren.md", "hetacumn.md", "cryosphere.md",
                "from_relion.md", "from_cryosparc.md", "landscape_subsets.md"}
    assert expected <= set(PAGES)
    index = open(os.path.join(TUTORIALS, "README.md")).read()
    for page in glob.glob(os.path.join(TUTORIALS, "*.md")):
        name = os.path.basename(page)
        if name != "README.md":
            assert "(%s)" % name in index, name
        for link in re.findall(r"\]\(([^)#:]+)\)", open(page).read()):
            target = os.path.normpath(os.path.join(TUTORIALS, link))
            assert os.path.exists(target), "%s links to a missing %s" % (name, link)
            if link.endswith(".png"):
                assert os.path.getsize(target) <= MAX_IMAGE_BYTES, "%s is large" % link


@pytest.mark.parametrize("page", PAGES)
def test_tutorial_commands_run(page, tmp_path):
    quickstart = page == "quickstart.md"
    script = tmp_path / "page.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(bash_blocks(os.path.join(TUTORIALS, page))))
    work = tmp_path / "work"
    work.mkdir()
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    env = dict(os.environ, **TINY)
    env.update(PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
               DEMO_OUT=str(tmp_path / "demo-output"), QT_QPA_PLATFORM="offscreen",
               FLEXPLUGIN_SCREENSHOT=str(pictures / "window.png"),
               DEMO_GUI_SCREENSHOT=str(pictures / "project_window.png"),
               # the suite already runs in the built .venv: `make demo` must not rebuild it
               STAMP_DEPS="")
    cmd = ["bash", str(script)]
    if shutil.which("xvfb-run"):
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24"] + cmd
    elif "flexplugin.demo open" in script.read_text():
        pytest.skip("the page opens the Scipion GUI: needs xvfb-run")
    proc = subprocess.run(cmd, cwd=REPO if quickstart else work, env=env, capture_output=True,
                          text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, "%s failed:\n%s" % (page, output[-6000:])
    if quickstart:
        assert "Demo finished" in output and os.path.getsize(pictures / "project_window.png") > 10000
    if "flexplugin.viewers.app landscape" in script.read_text():
        assert os.path.getsize(pictures / "window.png") > 10000
