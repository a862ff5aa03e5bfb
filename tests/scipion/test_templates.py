"""The workflow templates (flexplugin/templates/*.json.template): Scipion lists them, and each
loads into a fresh project and, with tiny sizes filled into its fields, runs to the end. The input
files are made here with the engine's simulator (particles.star, particles.cs, the model it
simulated from) and the synthetic two-domain model."""
import json

import pytest
from scipion_helpers import new_project

from flexplugin.synthetic import two_domain_chain, write_pdb

TEMPLATES = ("relion_cryodrgn", "cryosparc_hetsiren", "atomic_cryosphere", "simulate_all_methods")
TINY_TRAIN = dict(zdim=2, epochs=1, batch=32)
TINY_LANDSCAPE = dict(reduction=1, clusters=2, pcs=1, points=2)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny simulated set (200 particles, D=16) of a two-domain model in 2 states."""
    from flexplugin.engine.cli import main as engine_cli
    out = tmp_path_factory.mktemp("template-inputs")
    pdb = write_pdb(str(out / "two_domains.pdb"), two_domain_chain())
    sim = out / "sim"
    assert engine_cli(["simulate", "--out", str(sim), "--n", "200", "--box", "16", "--apix", "4.0",
                       "--snr", "1.0", "--states", "2", "--seed", "1", "--structure", pdb]) == 0
    return {"pdb": pdb, "star": str(sim / "particles.star"), "cs": str(sim / "particles.cs"),
            "model": str(sim / "gt_model.pdb")}


def _fields(name, files):
    if name == "relion_cryodrgn":
        return dict(star=files["star"], apix=4.0, box=0, encdim=32, decdim=32, lr=1e-3,
                    **TINY_TRAIN, **TINY_LANDSCAPE)
    if name == "cryosparc_hetsiren":
        return dict(cs=files["cs"], reconparticles=0, center="8 0 0", radius=20.0, soft=4.0, box=0,
                    lr=1e-3, **TINY_TRAIN, **TINY_LANDSCAPE)
    if name == "atomic_cryosphere":
        return dict(pdb=files["model"], star=files["star"], apix=4.0, box=0, segments=2, models=2,
                    lr=1e-3, **TINY_TRAIN, **TINY_LANDSCAPE)
    # box 24: HetACUMN diverges (NaN) on 16 px images
    fields = dict(pdb=files["pdb"], states=2, angle=90.0, particles=120, boxsize=24, apix=4.0, snr=1.0,
                  frozen=1, segments=2, models=2)
    for method in ("cryodrgn", "hetsiren", "hetacumn", "cryosphere"):
        fields.update({"zdim" + method: 2, "epochs" + method: 2 if method == "hetacumn" else 1,
                       "reduction" + method: 1, "clusters" + method: 2})
    return fields


def test_scipion_lists_the_templates():
    from pyworkflow.template import TemplateList
    from flexplugin import Plugin
    ids = {t.getObjId() for t in Plugin().getTemplates()}
    assert ids == {"flexplugin-" + name for name in TEMPLATES}
    tl = TemplateList()
    tl.addPluginTemplates()
    listed = {t.getObjId(): t for t in tl.templates}
    for name in TEMPLATES:
        t = listed["flexplugin-" + name]
        assert t.description.startswith("flexplugin: ")
        t.replaceEnvVariables()
        t.parseContent()
        # one field per title (pyworkflow keys the fields by title) and every alias distinct
        assert len(t.params) == (len(t.content) - 1) // 2
        aliases = [p.getAlias() for p in t.params.values()]
        assert len(set(aliases)) == len(aliases) and all(aliases)
        t._replaceFields()                       # the defaults give valid JSON
        steps = json.loads("".join(t.getContent()))
        assert [int(s["object.id"]) for s in steps] == sorted(int(s["object.id"]) for s in steps)


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_runs_to_the_end(name, inputs):
    from flexplugin.workflows import load_template, run_protocols
    project = new_project("flexTemplate_" + name)
    protocols = load_template(project, name, _fields(name, inputs))
    assert all(p.isSaved() for p in protocols.values())
    run_protocols(project, protocols, log=print)
    final = [project.getProtocol(p.getObjId()) for p in protocols.values()]   # read back from the database
    assert all(p.isFinished() for p in final)
    landscapes = [p for p in final if p.getClassName() == "ProtFlexLandscape"]
    size = 120 if name == "simulate_all_methods" else 200
    assert landscapes and all(p.outputParticles.getSize() == size for p in landscapes)
    assert all(p.outputClasses.getSize() == 2 for p in landscapes)
    if name == "cryosparc_hetsiren":
        train = [p for p in final if p.getClassName() == "ProtFlexHetSiren"][0]
        assert train.inputMask.get() is not None and train.inputReference.get() is not None
    if name in ("atomic_cryosphere", "simulate_all_methods"):
        sphere = [p for p in final if p.getClassName() == "ProtFlexCryoSphere"][0]
        assert sphere.outputStructures.getSize() == 2
    if name == "simulate_all_methods":
        methods = {p.getClassName() for p in final}
        assert {"ProtFlexCryoDrgn", "ProtFlexHetSiren", "ProtFlexHetAcumn", "ProtFlexCryoSphere"} <= methods
        assert len(landscapes) == 4
