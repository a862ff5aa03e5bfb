"""The plugin's workflow templates (``flexplugin/templates/*.json.template``) from a script.

In the Scipion GUI the templates are offered where Scipion lists templates (the project manager's
template list, ``scipion template`` with scipion-app). Without the GUI::

    python -m flexplugin.workflows list
    python -m flexplugin.workflows show relion_cryodrgn
    python -m flexplugin.workflows run relion_cryodrgn --project myProject star=/data/run_data.star apix=1.1 [--no-launch]
    python -m flexplugin.workflows runs myProject [--path | --last ProtFlexLandscape]

``runs`` lists a project's runs (id, status, class, label), or prints the project folder
(``--path``) or the id of the last run of a class (``--last``), for shell scripts.
``run`` creates the project (replacing one of that name), loads the template with the given
``alias=value`` fields (the aliases ``show`` lists) and runs its protocols one after the other,
or only saves them with ``--no-launch`` (open the project and press "Execute" on each).
The Scipion variables are set as :mod:`flexplugin.demo` does when they are not set already.
"""
import argparse
import os
import re
import sys
import time

SOURCE = "flexplugin"


def templates():
    """The plugin's templates ({name: pyworkflow LocalTemplate}), as the GUI lists them."""
    from pyworkflow.template import TemplateList
    tl = TemplateList()
    tl.addPluginTemplates()
    return {t.name: t for t in tl.templates if t.source == SOURCE}


def get_template(name):
    """A parsed template by its name (``relion_cryodrgn``) or id (``flexplugin-relion_cryodrgn``)."""
    name = name[len(SOURCE) + 1:] if name.startswith(SOURCE + "-") else name
    found = templates()
    if name not in found:
        raise KeyError("No template %r; the plugin has: %s" % (name, ", ".join(sorted(found))))
    template = found[name]
    template.replaceEnvVariables()
    template.parseContent()
    return template


def load_template(project, name, values=None):
    """Save the template's protocols in ``project`` with the fields ``values`` ({alias: value});
    returns {template id: protocol} in the template's order."""
    template = get_template(name)
    for alias, value in (values or {}).items():
        if not template.setParamValue(alias, str(value)):
            raise KeyError("The template %s has no field %r." % (name, alias))
    path = template.createTemplateFile()
    try:
        protocols = project.loadProtocols(path)
    finally:
        os.remove(path)
    return {key: protocols[key] for key in sorted(protocols, key=int)}


def run_protocols(project, protocols, log=print):
    """Run saved protocols one after the other (each waits for the previous one); raises on a
    failure with the end of its log."""
    for prot in protocols.values():
        errors = prot.validate()
        if errors:
            raise RuntimeError("%s: %s" % (prot.getObjLabel(), "; ".join(errors)))
        start = time.time()
        project.launchProtocol(prot, wait=True)
        if not prot.isFinished():
            logs = [os.path.join(project.getPath(), f) for f in prot.getLogPaths()]
            tail = "".join(open(f, errors="replace").read()[-3000:] for f in logs if os.path.exists(f))
            raise RuntimeError("%s %s:\n%s" % (prot.getObjLabel(), prot.getStatus(), tail))
        log("%-32s finished in %4.0f s" % (prot.getObjLabel(), time.time() - start))


def new_project(name):
    """A fresh project (an old one of that name is deleted); the current folder moves into it."""
    from pyworkflow.project import Manager
    manager = Manager()
    if manager.hasProject(name):
        manager.deleteProject(name)
    project = manager.createProject(name)
    os.chdir(project.getPath())
    return project


def list_runs(name, path=False, last=None):
    from pyworkflow.project import Manager
    manager = Manager()
    if not manager.hasProject(name):
        print("No project %r in %s." % (name, manager.PROJECTS), file=sys.stderr)
        return 1
    project = manager.loadProject(name)
    if path:
        print(project.getPath())
        return 0
    runs = sorted(project.getRuns(), key=lambda r: r.getObjId())
    if last:
        ids = [r.getObjId() for r in runs if r.getClassName() == last]
        if not ids:
            print("No %s run in %s." % (last, name), file=sys.stderr)
            return 1
        print(ids[-1])
        return 0
    for run in runs:
        outputs = ", ".join(n for n, _ in run.iterOutputAttributes())
        print("%6d  %-9s %-26s %-34s %s" % (run.getObjId(), run.getStatus(), run.getClassName(),
                                          run.getObjLabel(), outputs))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m flexplugin.workflows", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the plugin's templates")
    s = sub.add_parser("show", help="a template's fields (alias, type, default)")
    s.add_argument("template")
    r = sub.add_parser("run", help="a new project from a template, run to the end")
    r.add_argument("template")
    r.add_argument("--project", required=True, help="project name")
    r.add_argument("--no-launch", action="store_true", help="only save the protocols")
    r.add_argument("fields", nargs="*", metavar="alias=value")
    ls = sub.add_parser("runs", help="a project's runs")
    ls.add_argument("project")
    ls.add_argument("--path", action="store_true", help="print the project folder")
    ls.add_argument("--last", metavar="CLASS", help="print the id of the last run of this protocol class")
    argv = list(sys.argv[1:] if argv is None else argv)
    # alias=value fields may come anywhere after the template (argparse wants them together)
    fields = [t for t in argv[1:] if argv[0] == "run" and re.match(r"^[A-Za-z_]\w*=", t)]
    a = p.parse_args([t for t in argv if t not in fields])
    a.fields = fields

    from flexplugin.demo import scipion_environment
    env = scipion_environment(os.path.abspath(os.environ.get("DEMO_OUT", "demo-output")))
    if a.command == "list":
        for name, t in sorted(templates().items()):
            print("%-24s %s" % (name, t.description.replace("flexplugin: ", "")))
        return 0
    if a.command == "show":
        t = get_template(a.template)
        print(t.description)
        for param in t.params.values():
            print("  %-16s %-48s default %s" % (param.getAlias(), param.getTitle(), param.getValue()))
        return 0
    if a.command == "runs":
        return list_runs(a.project, a.path, a.last)
    values = dict(f.split("=", 1) for f in a.fields)
    project = new_project(a.project)
    protocols = load_template(project, a.template, values)
    print("project %s: %d protocols from %s" % (project.getPath(), len(protocols), a.template))
    if not a.no_launch:
        run_protocols(project, protocols)
    print("projects folder: %s" % os.path.join(env["SCIPION_USER_DATA"], "projects"))
    print("open it in the Scipion GUI: python -m flexplugin.demo open %s" % a.project)
    return 0


if __name__ == "__main__":
    sys.exit(main())
