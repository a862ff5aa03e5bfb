"""Nothing a user passes in is unpickled: the project's source (flexplugin/, protocols/, viewers/)
calls no ``pickle.load(s)``, no ``np.load(..., allow_pickle=True)``, and ``torch.load`` only with
``weights_only=True``; no command runs through ``os.system`` or a ``shell=True`` subprocess.

The other safety properties have their tests beside the code they check:
- command lines quoted for paths with spaces, quotes and ``$``: tests/scipion/test_plugin.py
  (``test_engine_command_quotes_every_argument`` and ``test_engine_runs_in_a_project_path_with_a_space_and_a_quote``);
- ``flexplugin serve`` opens no socket: tests/engine/test_serve.py (``test_serve_opens_no_socket``);
- damaged or foreign checkpoints are refused with one line, never loaded with pickle's arbitrary-code
  path: tests/engine/test_bad_inputs.py (``damaged_checkpoint_on_resume``, ``damaged_model``).
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("flexplugin", "protocols", "viewers")


def _sources():
    for folder in FOLDERS:
        for base, _, names in os.walk(os.path.join(ROOT, folder)):
            for name in sorted(names):
                if name.endswith(".py"):
                    yield os.path.join(base, name)


def _name(node):
    """Dotted name of a call's function (``torch.load``, ``np.load``, ``pickle.loads``, ...)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _keyword(call, name):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expression>"
    return None


def unsafe_calls(path):
    """``file:line: what`` for every unsafe call in one source file."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name, where = _name(node.func), "%s:%d" % (os.path.relpath(path, ROOT), node.lineno)
        if name.split(".")[-1] in ("load", "loads") and name.split(".")[0] in ("pickle", "cPickle", "dill",
                                                                              "joblib", "cloudpickle"):
            found.append("%s: %s" % (where, name))
        elif name.endswith("torch.load"):
            if _keyword(node, "weights_only") is not True:
                found.append("%s: torch.load without weights_only=True" % where)
        elif name in ("np.load", "numpy.load") and _keyword(node, "allow_pickle") not in (None, False):
            found.append("%s: np.load with allow_pickle" % where)
        elif name == "os.system" or (name.startswith("subprocess.") and _keyword(node, "shell") not in (None, False)):
            found.append("%s: %s through a shell" % (where, name))
    return found


def test_the_scanner_finds_unsafe_calls(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle, torch, numpy as np, subprocess\n"
                   "pickle.load(open('x', 'rb'))\n"
                   "torch.load('m.pt')\n"
                   "torch.load('m.pt', weights_only=False)\n"
                   "np.load('z.npy', allow_pickle=True)\n"
                   "subprocess.run('ls', shell=True)\n"
                   "torch.load('m.pt', map_location='cpu', weights_only=True)\n"
                   "np.load('z.npy')\n")
    found = unsafe_calls(str(bad))
    assert [f.split(": ", 1)[1] for f in found] == [
        "pickle.load", "torch.load without weights_only=True", "torch.load without weights_only=True",
        "np.load with allow_pickle", "subprocess.run through a shell"]
    assert [int(f.split(":")[1]) for f in found] == [2, 3, 4, 5, 6]


def test_no_unpickling_and_no_shell_in_the_source():
    files = list(_sources())
    assert len(files) > 30
    found = [f for path in files for f in unsafe_calls(path)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("text", ["pickle.loads(", "allow_pickle=True", "weights_only=False"])
def test_no_unsafe_text_anywhere_in_the_source(text):
    """The same by plain text (catches calls the AST walk would not name, e.g. aliases)."""
    hits = []
    for path in _sources():
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                code = line.split("#", 1)[0]
                if text in code and "``" not in code:
                    hits.append("%s:%d: %s" % (os.path.relpath(path, ROOT), i, line.strip()))
    assert not hits, "\n".join(hits)
