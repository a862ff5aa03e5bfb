#!/usr/bin/env python
"""Time from the eye icon to a visible window, for every window the flexplugin viewers open.

    .venv/bin/python benchmarks/viewer_startup.py [--ref COMMIT] [--repeats 3] [--particles 5000]
        [--cases landscape volumes training plot segments] [--out benchmarks/out/viewer_startup]

Inputs (made once, kept in OUT/scipion and reused): a Scipion project with a simulated set
(``--particles``, D=32, 3 states), a short cryoDRGN training (1 epoch) and a landscape analysis
(PCA, 3 k-means classes, a PC1 traversal), and a cryoSPHERE-like training folder (segments.txt,
segment_motions.npz, z.npy and the two-domain model of :mod:`flexplugin.synthetic`).

Each case starts ``python -m flexplugin.viewers.app <args>`` in the project folder with the
arguments the Scipion viewers (``viewers/viewer_flex.py``) give it, on a private Xvfb display:

- landscape: the particles of the landscape analysis (the map decoder ``flexplugin serve`` too);
- volumes: the class maps of the analysis; training: its curves (metrics.json);
- plot: the landscape picture the analysis saved;
- segments: the cryoSPHERE segments window (``--train-dir``/``--structure``, the same loader).

An ``xev`` on the root window reports each top-level window the moment the X server maps it:
"window" is the time from the start of the process to the first window mapped, "content" to the
first one that is not a "Loading ..." window (the window with its content). Import time: a fresh
interpreter importing ``flexplugin.viewers.app`` (what ``-m`` imports before ``main`` runs), and
the heavy packages that import brings in. With ``--ref COMMIT`` the same cases run on that
commit too (a ``git worktree`` in /tmp, put first on PYTHONPATH), interleaved run by run with the
working tree's code; medians and ref/current ratios go to OUT/results.json.

Measured (benchmarks/RESULTS.md; 2-core Intel Xeon shared with other jobs, load 3; median of 5):
the first window 1.1-3.0 s after the start before the "Loading ..." window, 0.2-0.3 s with it; the
content 0.3-1.9 s (landscape of 5000 particles: 3.0 s before, 1.9 s after); importing the program
0.84 s before (pyworkflow, pwem, matplotlib, scipy), 0.17 s after (none of them).
"""
import argparse
import json
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROJECT = "viewerStartup"
HEAVY = ("pyworkflow", "pwem", "matplotlib", "pyqtgraph", "scipy", "sklearn", "umap", "torch")
CASE_NAMES = ("landscape", "volumes", "training", "plot", "segments")


# ----------------------------------------------------------------------------------- inputs
def build_inputs(out, particles):
    """The project and the segments folder (reused when OUT/inputs.json matches); their cases."""
    record = os.path.join(out, "inputs.json")
    if os.path.exists(record):
        with open(record) as f:
            inputs = json.load(f)
        if inputs.get("particles") == particles and all(os.path.exists(p) for p in inputs["check"]):
            return inputs
    from flexplugin import protocols as P
    from flexplugin.workflows import new_project

    project = new_project(PROJECT)                      # pyworkflow works in the project folder

    def run(cls, inputs=None, **kw):
        prot = project.newProtocol(cls, **kw)
        for name, (src, output) in (inputs or {}).items():
            getattr(prot, name).set(src)
            getattr(prot, name).setExtended(output)
        t = time.time()
        project.launchProtocol(prot, wait=True)
        if not prot.isFinished():
            raise SystemExit("%s did not finish: see %s" % (cls.__name__, prot.getLogPaths()))
        print("  %s: %.0f s" % (cls.__name__, time.time() - t), flush=True)
        return prot

    print("making the inputs (a project with %d particles) ..." % particles, flush=True)
    sim = run(P.ProtFlexSimulate, numParticles=particles, boxSize=32, samplingRate=3.0, snr=1.0,
              seed=7, numStates=3, maxAngle=90.0)
    train = run(P.ProtFlexCryoDrgn, inputs={"inputParticles": (sim, "outputParticles")}, zDim=8,
                numEpochs=1, encDim=64, decDim=64, learningRate=1e-3, batchSize=32)
    land = run(P.ProtFlexLandscape, inputs={"inputParticles": (train, "outputParticles")}, reduction=1,
               numClusters=3, numPCs=1, traversalPoints=6)
    path = os.path.abspath(project.getPath())
    metrics = os.path.abspath(os.path.join(path, train._outDir("metrics.json")))
    from flexplugin.viewers.app import saved_plots
    title, picture = saved_plots(os.path.join(path, land._outDir()))[0]
    folder, pdb = segments_folder(os.path.join(out, "segments"), particles)
    run_name = land.getRunName()
    # the arguments of viewers/viewer_flex.py: _outputView, _showCurves, _showSavedPlot, _segmentsView
    cases = {
        "landscape": ["landscape", "--project", path, "--protocol", land.getObjId(), "--output",
                      "outputParticles"],
        "volumes": ["volumes", "--project", path, "--protocol", land.getObjId(), "--output",
                    "outputClasses"],
        "training": ["training", "--metrics", metrics, "--title", train.getRunName()],
        "plot": ["plot", "--files", os.path.abspath(picture), "--names", title, "--title",
                 "%s \u2014 %s" % (run_name, title)],
        "segments": ["segments", "--train-dir", folder, "--structure", pdb],
    }
    inputs = dict(particles=particles, project=path, cases={k: [str(a) for a in v] for k, v in cases.items()},
                  check=[path, metrics, picture, pdb])
    with open(record, "w") as f:
        json.dump(inputs, f, indent=1)
    return inputs


def segments_folder(folder, n, k=4, seed=0):
    """A cryoSPHERE training folder as the engine writes it (k segments of the two-domain model,
    their motions and z of n particles) and the model; (folder, pdb)."""
    from flexplugin.synthetic import two_domain_chain, write_pdb
    os.makedirs(folder, exist_ok=True)
    coords = two_domain_chain()
    numbers = np.arange(1, len(coords) + 1)
    segment = 1 + (np.arange(len(coords)) * k) // len(coords)
    np.savetxt(os.path.join(folder, "segments.txt"), np.column_stack([numbers, segment]), fmt="%d",
               header="residue_number segment")
    rng = np.random.default_rng(seed)
    s = rng.uniform(-1, 1, n)
    angle = np.abs(rng.normal(size=(n, k))) + 15 * s[:, None] * (np.arange(k) == 2)
    translation = 0.3 * rng.normal(size=(n, k, 3))
    translation[:, 2, 0] += 3 + 2 * s
    axis = np.zeros_like(translation)
    axis[..., 2] = 1.0
    np.savez(os.path.join(folder, "segment_motions.npz"), angle_deg=angle, axis=axis, translation_A=translation)
    z = np.column_stack([2 * s + 0.2 * rng.normal(size=n), 0.5 * rng.normal(size=(n, 3))])
    np.save(os.path.join(folder, "z.npy"), z.astype(np.float32))
    return folder, write_pdb(os.path.join(os.path.dirname(folder), "model.pdb"), coords)


# ----------------------------------------------------------------------------------- code under test
def ref_pythonpath(commit, tmp):
    """A worktree of ``commit`` and a folder to put first on PYTHONPATH so that ``flexplugin``,
    ``flexplugin.protocols`` and ``flexplugin.viewers`` come from it (as setup.py's package_dir
    maps them)."""
    tree = os.path.join(tmp, "tree")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", tree, commit], check=True,
                   capture_output=True)
    pkg = os.path.join(tmp, "path", "flexplugin")
    os.makedirs(pkg)
    for name in os.listdir(os.path.join(tree, "flexplugin")):
        os.symlink(os.path.join(tree, "flexplugin", name), os.path.join(pkg, name))
    for name in ("protocols", "viewers"):
        os.symlink(os.path.join(tree, name), os.path.join(pkg, name))
    return tree, os.path.dirname(pkg)


def import_time(env, repeats):
    """Median seconds to import flexplugin.viewers.app in a fresh interpreter, and the heavy
    packages it brings in."""
    code = ("import sys, time; t = time.perf_counter(); import flexplugin.viewers.app; "
            "dt = time.perf_counter() - t; print(dt); print(' '.join(sorted(m for m in %r if m in sys.modules)))"
            % (HEAVY,))
    times, heavy = [], ""
    for _ in range(repeats):
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              cwd=tempfile.gettempdir(), timeout=120)
        if proc.returncode:
            raise SystemExit(proc.stderr[-2000:])
        lines = proc.stdout.split("\n")
        times.append(float(lines[0]))
        heavy = lines[1]
    return statistics.median(times), heavy.split()


# ----------------------------------------------------------------------------------- X display
class Display:
    """A private Xvfb display and an ``xev`` that reports every top-level window mapped on it."""

    def __init__(self):
        for tool in ("Xvfb", "xev", "xprop"):
            if not shutil.which(tool):
                raise SystemExit("this benchmark needs %s (apt-get install xvfb x11-utils)" % tool)
        self.number = next(n for n in range(90, 200) if not os.path.exists("/tmp/.X11-unix/X%d" % n)
                           and not os.path.exists("/tmp/.X%d-lock" % n))
        self.name = ":%d" % self.number
        self.xvfb = subprocess.Popen(["Xvfb", self.name, "-screen", "0", "1920x1200x24", "-nolisten", "tcp"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not os.path.exists("/tmp/.X11-unix/X%d" % self.number):
            if time.time() > deadline or self.xvfb.poll() is not None:
                raise SystemExit("Xvfb %s did not start" % self.name)
            time.sleep(0.05)
        env = dict(os.environ, DISPLAY=self.name)
        cmd = ["xev", "-root", "-event", "substructure"]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL"] + cmd
        self.xev = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.maps = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(0.3)

    def _read(self):
        mapping = False
        for line in self.xev.stdout:
            if line.startswith("MapNotify"):
                mapping = True
                continue
            m = re.search(r"window (0x[0-9a-f]+), override (\w+)", line) if mapping else None
            if m:
                mapping = False
                if m.group(2) == "NO":
                    self.maps.put((time.perf_counter(), m.group(1)))

    def title(self, wid):
        proc = subprocess.run(["xprop", "-display", self.name, "-id", wid, "_NET_WM_NAME", "WM_NAME"],
                              capture_output=True, text=True)
        m = re.search(r'= "(.*)"', proc.stdout)
        return m.group(1) if m else ""

    def close(self):
        for proc in (self.xev, self.xvfb):
            proc.terminate()
            proc.wait(10)


def start_and_watch(display, args, cwd, env, timeout=180.0):
    """Start the app as the Scipion viewer does and wait for its content window: {"window": s,
    "content": s, "titles": [...]} from the process start."""
    while not display.maps.empty():
        display.maps.get()
    env = dict(env, DISPLAY=display.name, QT_QPA_PLATFORM="xcb")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "flexplugin.viewers.app"] + args, cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    result = {"titles": []}
    try:
        while "content" not in result:
            try:
                t, wid = display.maps.get(timeout=0.5)
            except queue.Empty:
                if proc.poll() is not None:
                    raise SystemExit("the app ended (%s) without a window: %s"
                                     % (proc.returncode, proc.stderr.read()[-3000:]))
                if time.perf_counter() - t0 > timeout:
                    raise SystemExit("no window after %.0f s: %s" % (timeout, " ".join(args)))
                continue
            title = display.title(wid)
            result["titles"].append(title)
            result.setdefault("window", t - t0)
            if not title.lower().startswith("loading"):
                result["content"] = t - t0
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)                   # the app and its decoder server
        except ProcessLookupError:
            pass
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return result


# ----------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", help="a commit to measure too (the code before a change)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--particles", type=int, default=5000)
    ap.add_argument("--cases", nargs="+", default=list(CASE_NAMES), choices=CASE_NAMES)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "viewer_startup"))
    a = ap.parse_args(argv)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    sys.path.insert(0, ROOT)
    from flexplugin.demo import scipion_environment
    scipion_environment(os.path.join(out, "scipion"))
    inputs = build_inputs(out, a.particles)

    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "viewers", "flexplugin"],
                                capture_output=True, text=True).stdout.strip())
    base_env = dict(os.environ)
    base_env.pop("FLEXPLUGIN_SCREENSHOT", None)
    codes = {"current": dict(base_env)}
    tmp = worktree = None
    if a.ref:
        tmp = tempfile.mkdtemp(prefix="flexplugin-ref-")
        worktree, path = ref_pythonpath(a.ref, tmp)
        codes = {"ref": dict(base_env, PYTHONPATH=os.pathsep.join([path] + [p for p in [
            base_env.get("PYTHONPATH")] if p])), **codes}
    results = dict(machine=machine(), particles=a.particles, repeats=a.repeats,
                   current="%s%s" % (head, " + working tree changes" if dirty else ""), ref=a.ref,
                   imports={}, cases={})
    display = Display()
    try:
        for code, env in codes.items():
            seconds, heavy = import_time(env, a.repeats)
            results["imports"][code] = dict(seconds=seconds, heavy=heavy)
            print("import flexplugin.viewers.app (%s): %.3f s, brings in %s" % (code, seconds, heavy or "none"),
                  flush=True)
        for case in a.cases:
            runs = {code: [] for code in codes}
            for _ in range(a.repeats):
                for code, env in codes.items():             # interleaved: the load on the machine drifts
                    r = start_and_watch(display, inputs["cases"][case], inputs["project"], env)
                    runs[code].append(r)
                    print("  %-9s %-7s window %6.2f s   content %6.2f s   %s" % (
                        case, code, r["window"], r["content"], " | ".join(r["titles"])), flush=True)
            entry = {}
            for code, rs in runs.items():
                entry[code] = {key: statistics.median(r[key] for r in rs) for key in ("window", "content")}
                entry[code]["runs"] = rs
            if "ref" in entry:
                entry["ratio"] = {key: entry["ref"][key] / entry["current"][key] for key in ("window", "content")}
            results["cases"][case] = entry
    finally:
        display.close()
        if worktree:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", worktree], capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)
    path = os.path.join(out, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print_table(results)
    print("written: %s" % path)
    return 0


def machine():
    model = ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            model = m.group(1).strip() if m else ""
    return dict(cpu=model, cores=os.cpu_count(), load=list(os.getloadavg()))


def print_table(results):
    codes = [c for c in ("ref", "current") if c in results["imports"]]
    print("\nmedian of %d runs, seconds from the process start (%s)" % (results["repeats"], ", ".join(
        "%s = %s" % (c, results[c] if c == "ref" else results["current"]) for c in codes)))
    print("%-10s%s" % ("case", "".join("%26s" % ("%s: window / content" % c) for c in codes)
                       + ("   ref/current: window / content" if len(codes) == 2 else "")))
    for case, entry in results["cases"].items():
        row = "".join("%26s" % ("%.2f s / %.2f s" % (entry[c]["window"], entry[c]["content"])) for c in codes)
        if "ratio" in entry:
            row += "   %17.1fx / %.1fx" % (entry["ratio"]["window"], entry["ratio"]["content"])
        print("%-10s %s" % (case, row))
    for c in codes:
        i = results["imports"][c]
        print("import flexplugin.viewers.app (%s): %.2f s (%s)" % (c, i["seconds"], " ".join(i["heavy"]) or "-"))


if __name__ == "__main__":
    sys.exit(main())
