"""The file names that cross the engine / Scipion line live in flexplugin/constants.py only: no
other module of the plugin spells them out (a renamed file would otherwise break one side)."""
import os
import re

from flexplugin import constants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = [constants.Z_FILE, constants.ROTATIONS_FILE, constants.SHIFTS_FILE, constants.CONSENSUS_MAP,
         constants.CONFIG_JSON, constants.ZRED_FILE, constants.KMEANS_LABELS_FILE, constants.Z_VALUES_FILE,
         constants.PCA_FILE, constants.ANALYSIS_JSON, constants.LANDSCAPE_PLOT,
         constants.PCA_VARIANCE_PLOT, constants.CLUSTER_SIZES_PLOT]


def test_no_stray_file_name_literals():
    stray = []
    for folder in ("flexplugin", "protocols", "viewers"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                path = os.path.join(dirpath, name)
                if not name.endswith(".py") or path == constants.__file__:
                    continue
                text = open(path, encoding="utf-8").read()
                for n in NAMES:
                    for m in re.finditer(r"""["']%s["']""" % re.escape(n), text):
                        stray.append("%s:%d %s" % (os.path.relpath(path, ROOT),
                                                   text.count("\n", 0, m.start()) + 1, n))
    assert not stray, "file names spelled outside flexplugin/constants.py:\n" + "\n".join(stray)
