"""``make demo``: the whole job in a Scipion project, as a user runs it from the GUI.

simulate a heterogeneous particle set -> train a method (cryoDRGN by default) -> landscape
analysis (k-means classes with their maps, traversal of the first principal component) -> a
picture of the landscape window. Prints where the results are and the command that opens the
project in the Scipion GUI::

    python -m flexplugin.demo                 # run the demo (DEMO_METHOD picks the method)
    python -m flexplugin.demo open [PROJECT]  # open a demo project in the Scipion GUI

Environment (all optional):

- ``DEMO_METHOD``: cryodrgn (default), hetsiren, hetacumn or cryosphere;
- ``DEMO_OUT``: output folder (default ``demo-output``); the Scipion projects live in
  ``$SCIPION_USER_DATA/projects`` (default ``DEMO_OUT/ScipionUserData``);
- ``DEMO_N`` (particles), ``DEMO_BOX`` (pixels), ``DEMO_EPOCHS``: a smaller or larger run.

The Scipion variables the demo needs (``SCIPION_USER_DATA``, ``SCIPION_HOSTS``, ``SCIPION_DOMAIN``,
``SCIPION_PYTHON``, ...) are set only when they are not set already, so inside a Scipion
installation the project lands in the user's own project list.
"""
import os
import subprocess
import sys
import time

from .constants import LANDSCAPE_PLOT

METHODS = ("cryodrgn", "hetsiren", "hetacumn", "cryosphere")
PROJECT = "flexDemo"

# Per method: the epochs, the particles (default 1500) and the training parameters, small enough
# for a few minutes on a CPU; cryoDRGN's project keeps the plain name (the quickstart opens it).
SETTINGS = {
    "cryodrgn": dict(epochs=15, project=PROJECT,
                     train=dict(zDim=2, encDim=128, decDim=128, learningRate=1e-3, batchSize=16)),
    # with its focus: a consensus map as reference and a soft sphere around the moving arm
    "hetsiren": dict(epochs=15, train=dict(zDim=4, learningRate=3e-4, batchSize=16)),
    # the simulated poses refined (ab initio pose learning needs far more images than a demo)
    # (the encoder at lr 3e-4, the decoder at 1e-3)
    "hetacumn": dict(epochs=16, train=dict(zDim=2, useInputPoses=True, frozenEpochs=0, encoderWidth=16,
                                           learningRate=3e-4, decoderLrScale=10 / 3, batchSize=16)),
    "cryosphere": dict(epochs=15, train=dict(zDim=2, numSegments=4, numStructures=4,
                                             learningRate=1e-3, batchSize=16)),
}


def _out():
    return os.path.abspath(os.environ.get("DEMO_OUT", "demo-output"))


def scipion_environment(out=None):
    """Set the Scipion variables (where not set) before pyworkflow is imported; returns them."""
    out = out or _out()
    os.makedirs(out, exist_ok=True)
    hosts = os.path.join(out, "hosts.conf")
    if not os.path.exists(hosts):
        with open(hosts, "w") as f:
            f.write("[localhost]\nPARALLEL_COMMAND = mpirun -np %_(JOB_NODES)d --map-by node %_(COMMAND)s\n")
    values = {
        "SCIPION_HOME": os.path.join(out, "scipion-home"),
        "SCIPION_USER_DATA": os.path.join(out, "ScipionUserData"),
        "SCIPION_HOSTS": hosts,
        "SCIPION_DOMAIN": "pwem",
        "SCIPION_PYTHON": sys.executable,
        "SCIPION_NOTIFY": "False",
        "SCIPION_TEST_NOSYNC": "True",
        "FLEXPLUGIN_ENV_ACTIVATION": "",      # the engine runs with this interpreter
    }
    for key, value in values.items():
        os.environ.setdefault(key, value)
    # engine subprocesses find this interpreter's `flexplugin`
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return {key: os.environ[key] for key in values}


def open_command(project):
    """The shell line that opens ``project`` in the Scipion GUI (pyworkflow's project window)."""
    env = " ".join("%s=%s" % (k, _quote(os.environ[k])) for k in
                   ("SCIPION_HOME", "SCIPION_USER_DATA", "SCIPION_HOSTS", "SCIPION_DOMAIN",
                    "SCIPION_PYTHON", "SCIPION_NOTIFY", "FLEXPLUGIN_ENV_ACTIVATION"))
    return "%s %s -O -m pyworkflow.apps.pw_project %s" % (env, _quote(sys.executable), project)


def _quote(value):
    import shlex
    return shlex.quote(value) if value else "''"


# ----------------------------------------------------------------------------------- running
class Demo:
    def __init__(self, method, out):
        self.method, self.out = method, out
        self.t0 = time.time()
        self.project = None

    def say(self, text):
        print("[%5.0f s] %s" % (time.time() - self.t0, text), flush=True)

    def new_project(self, name):
        from flexplugin.workflows import new_project
        self.project = new_project(name)
        return self.project

    def run(self, protClass, label, inputs=None, **kwargs):
        """Launch a protocol, follow its log (the engine's progress lines) until it ends."""
        prot = self.project.newProtocol(protClass, objLabel=label, **kwargs)
        for name, (src, output) in (inputs or {}).items():
            getattr(prot, name).set(src)
            getattr(prot, name).setExtended(output)
        errors = prot.validate()
        if errors:
            raise SystemExit("%s: %s" % (label, "; ".join(errors)))
        start = time.time()
        self.say("%s (%s) ..." % (label, protClass.__name__))
        self.project.launchProtocol(prot, wait=False)
        log = os.path.join(self.project.getPath(), prot.getLogPaths()[0])
        seen = 0
        while True:
            time.sleep(1.0)
            self.project._updateProtocol(prot)
            seen = self._follow(log, seen)
            if not prot.isActive():
                break
        self._follow(log, seen)
        if not prot.isFinished():
            tail = open(log, errors="replace").read()[-3000:] if os.path.exists(log) else ""
            raise SystemExit("%s failed (%s). Log %s:\n%s" % (label, prot.getStatus(), log, tail))
        self.say("%s finished in %.0f s" % (label, time.time() - start))
        return prot

    def _follow(self, log, seen):
        """Print the new engine lines of a run's log (progress), from byte ``seen``."""
        if not os.path.exists(log):
            return seen
        with open(log, errors="replace") as f:
            f.seek(seen)
            text = f.read()
        end = text.rfind("\n") + 1
        for line in text[:end].splitlines():
            line = line.strip()
            if any(line.startswith(p) for p in ("train:", "analyze:", "simulate:", "reconstruct:",
                                                "decode:", "flexplugin ")) and "%" not in line[:6]:
                print("          | " + line, flush=True)
        return seen + len(text[:end].encode("utf-8", "replace"))


def _ari(labels, predicted):
    from sklearn.metrics import adjusted_rand_score
    return adjusted_rand_score(labels, predicted)


def run_demo(method):
    env = scipion_environment()
    out = _out()
    settings = SETTINGS[method]
    n = int(os.environ.get("DEMO_N", settings.get("n", 1500)))
    box = int(os.environ.get("DEMO_BOX", "32"))
    epochs = int(os.environ.get("DEMO_EPOCHS", settings["epochs"]))
    train_kw = dict(settings["train"])
    if "frozenEpochs" in train_kw:
        train_kw["frozenEpochs"] = min(train_kw["frozenEpochs"], max(0, epochs // 2))
    if train_kw.get("boxSize", 0) >= box:
        train_kw["boxSize"] = 0
    name = settings.get("project", "%s-%s" % (PROJECT, method))

    from flexplugin import protocols as P
    from flexplugin.protocols.protocol_train_base import ProtFlexTrainBase
    train_class = next(c for c in vars(P).values() if isinstance(c, type) and
                       issubclass(c, ProtFlexTrainBase) and c._method == method)
    demo = Demo(method, out)
    demo.say("flexplugin demo: %s on %d simulated particles (box %d), %d epochs" % (method, n, box, epochs))
    demo.say("Scipion project %s in %s" % (name, os.path.join(env["SCIPION_USER_DATA"], "projects")))
    project = demo.new_project(name)

    sim_kw = dict(numParticles=n, boxSize=box, samplingRate=3.0, snr=1.0, seed=7, numStates=4,
                  maxAngle=90.0)
    inputs = {}
    if "atomic_model" in train_class._requiredInputs:
        from pwem.protocols import ProtImportPdb
        from flexplugin.synthetic import two_domain_chain, write_pdb
        pdb = write_pdb(os.path.join(out, "two_domains.pdb"), two_domain_chain())
        model = demo.run(ProtImportPdb, "import atomic model", inputPdbData=1, pdbFile=pdb)
        sim = demo.run(P.ProtFlexSimulate, "simulate particles", source=2,
                       inputs={"inputStructure": (model, "outputPdb")}, **sim_kw)
        inputs["inputStructure"] = (sim, "outputStructure")
    else:
        sim = demo.run(P.ProtFlexSimulate, "simulate particles", **sim_kw)
    inputs["inputParticles"] = (sim, "outputParticles")
    if "mask" in train_class._optionalInputs:
        recon = demo.run(P.ProtFlexReconstruct, "consensus map", inputs={"inputParticles": (sim, "outputParticles")})
        scale = box * 3.0 / 96.0          # the arm's place scales with the box (96 Å at D=32)
        mask = demo.run(P.ProtFlexCreateMask, "mask of the moving arm",
                        inputs={"inputVolume": (recon, "outputVolume")}, shape=0,
                        center="%g %g 0" % (10 * scale, 8 * scale), radius=18.0 * scale, softEdge=6.0)
        inputs["inputMask"] = (mask, "outputMask")
        inputs["inputReference"] = (recon, "outputVolume")

    train = demo.run(train_class, "train %s" % method, inputs=inputs, numEpochs=epochs, **train_kw)
    land = demo.run(P.ProtFlexLandscape, "landscape analysis",
                    inputs={"inputParticles": (train, "outputParticles")},
                    reduction=1, numClusters=4, numPCs=1, traversalPoints=6)

    # how well the landscape's classes recover the simulated states
    import numpy as np
    ids = [p.getObjId() for p in land.outputParticles.iterItems(orderBy="id")]
    row = {i: r for r, i in enumerate(ids)}
    predicted = np.zeros(len(ids), int)
    for cls in land.outputClasses:
        for p in cls.iterItems():
            predicted[row[p.getObjId()]] = cls.getObjId()
    labels = np.load(os.path.join(project.getPath(), sim.getWorkingDir(), "extra", "labels.npy"))
    ari = _ari(labels, predicted)
    demo.say("k-means classes against the 4 simulated states: adjusted Rand index %.2f (1 = perfect)" % ari)

    shot = os.path.join(out, "landscape_window_%s.png" % method)
    demo.say("picture of the landscape window ...")
    ok = screenshot(project, land, shot)

    extra = os.path.join(project.getPath(), land.getWorkingDir(), "extra", "landscape")
    classes = sorted(os.path.join(project.getPath(), c.getRepresentative().getFileName())
                     for c in land.outputClasses)
    print("\nDemo finished in %.0f s (%s)." % (time.time() - demo.t0, method), flush=True)
    print("  landscape plot:    %s" % os.path.join(extra, LANDSCAPE_PLOT))
    if ok:
        print("  landscape window:  %s" % shot)
    print("  class maps:        %s" % os.path.dirname(classes[0]))
    for path in classes:
        print("                     %s" % os.path.basename(path))
    print("  PC1 traversal:     %s" % os.path.join(extra, "pc1"))
    print("  Scipion project:   %s" % project.getPath())
    print("\nOpen the project in the Scipion GUI (an X display is needed):")
    prefix = "DEMO_OUT=%s " % _quote(out) if "DEMO_OUT" in os.environ else ""
    print("  %s%s -m flexplugin.demo open %s" % (prefix, _rel(sys.executable), name))
    print("or, with the variables spelled out:\n  %s" % open_command(name))
    return 0


def _rel(path):
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def screenshot(project, land, path):
    """The landscape window (decoded map included) as a PNG, offscreen when there is no display."""
    env = dict(os.environ, FLEXPLUGIN_SCREENSHOT=path)
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    cmd = [sys.executable, "-m", "flexplugin.viewers.app", "landscape", "--project", project.getPath(),
           "--protocol", str(land.getObjId()), "--output", "outputParticles"]
    if os.path.exists(path):
        os.remove(path)
    proc = subprocess.run(cmd, cwd=project.getPath(), env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not os.path.exists(path):
        print("          | no picture of the window: %s" % (proc.stderr.strip().splitlines() or ["?"])[-1])
        return False
    return True


def open_project(name):
    """Open ``name`` in pyworkflow's project window (replaces this process).

    With ``DEMO_GUI_SCREENSHOT=file.png`` the window is drawn, pictured with ImageMagick's
    ``import`` after ``DEMO_GUI_DELAY`` seconds (default 5) and closed (documentation, tests)."""
    scipion_environment()
    if not os.environ.get("DISPLAY"):
        print("No X display (DISPLAY is not set): the Scipion GUI cannot open.", file=sys.stderr)
        return 1
    from pyworkflow.project import Manager
    manager = Manager()
    if not manager.hasProject(name):
        print("No project %r in %s (run the demo first)." % (name, manager.PROJECTS), file=sys.stderr)
        return 1
    shot = os.environ.get("DEMO_GUI_SCREENSHOT")
    if not shot:
        os.execv(sys.executable, [sys.executable, "-O", "-m", "pyworkflow.apps.pw_project", name])
    from pyworkflow.gui.project import ProjectWindow
    window = ProjectWindow(manager.getProjectPath(name))

    def capture():
        window.root.update()
        status = subprocess.run(["import", "-window", "root", shot]).returncode
        print("project window pictured in %s" % shot if status == 0 else "no picture (ImageMagick's import)")
        os._exit(status)

    window.root.after(int(1000 * float(os.environ.get("DEMO_GUI_DELAY", "5"))), capture)
    window.show()
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "open":
        return open_project(argv[1] if len(argv) > 1 else PROJECT)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    method = os.environ.get("DEMO_METHOD", "cryodrgn").lower()
    if method not in METHODS:
        print("DEMO_METHOD must be one of %s, not %r." % (", ".join(METHODS), method), file=sys.stderr)
        return 2
    return run_demo(method)


if __name__ == "__main__":
    sys.exit(main())
