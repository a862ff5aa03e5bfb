"""Protocols end to end in real pyworkflow projects: simulate / RELION import / cryoSPARC import
-> ProtFlexReconstruct, checked against the simulation's ground truth."""
import os
import shutil

import numpy as np
from scipion_helpers import GT_FSC05_MAX_A, SIM, gt_resolution, launch, new_project, sim_file

from flexplugin.engine.geometry import so3
from flexplugin.engine.io.starfile import read_star


def _reconstruct(project, src, output="outputParticles"):
    from flexplugin.protocols import ProtFlexReconstruct
    return launch(project, ProtFlexReconstruct, inputs={"inputParticles": (src, output)})


def _check_map(project, rec, sim_prot, label):
    vol = rec.outputVolume
    path = os.path.join(project.getPath(), vol.getFileName())
    res, corr = gt_resolution(path, sim_file(sim_prot, "gt_volumes", "state_00.mrc"))
    print("%s: FSC=0.5 with the ground truth at %.2f Å, correlation %.4f" % (label, res, corr))
    assert res <= GT_FSC05_MAX_A
    assert abs(vol.getSamplingRate() - SIM["samplingRate"]) < 1e-6
    assert vol.hasHalfMaps() and all(os.path.exists(os.path.join(project.getPath(), h))
                                     for h in vol.getHalfMaps(asList=True))
    return res


def test_simulate_outputs(sim):
    project, prot = sim
    parts, vols = prot.outputParticles, prot.outputVolumes
    assert parts.getSize() == SIM["numParticles"] and parts.hasCTF() and parts.hasAlignmentProj()
    assert parts.getXDim() == SIM["boxSize"] and abs(parts.getSamplingRate() - 3.0) < 1e-6
    assert vols.getSize() == 1 and abs(vols.getSamplingRate() - 3.0) < 1e-6
    first = parts.getFirstItem()
    assert first.getCTF().getDefocusU() > 5000 and first.getLocation()[0] == 1
    assert prot.summary() and prot.methods() and prot.citations()


def test_simulate_then_reconstruct(sim):
    project, prot = sim
    _check_map(project, _reconstruct(project, prot), prot, "simulate -> reconstruct")


def _star_poses(path):
    loop = next(b for b in read_star(path) if b.name == "particles").loop
    f = lambda k: np.array(loop[k], dtype=float)  # noqa: E731
    rot = so3.euler_to_matrix(f("rlnAngleRot"), f("rlnAngleTilt"), f("rlnAnglePsi"))
    return loop["rlnImageName"], rot, np.stack([f("rlnOriginXAngst"), f("rlnOriginYAngst")], 1)


def test_relion_import_then_reconstruct(sim):
    """scipion-em-relion's importer -> our export keeps the original angles and shifts."""
    from pwem.protocols import ProtImportParticles
    project, prot = sim
    star = sim_file(prot, "particles.star")
    imported = launch(project, ProtImportParticles, importFrom=ProtImportParticles.IMPORT_FROM_RELION,
                      starFile=star, samplingRate=3.0, voltage=300.0, sphericalAberration=2.7,
                      amplitudeContrast=0.1, magnification=50000)
    assert imported.outputParticles.hasAlignmentProj() and imported.outputParticles.hasCTF()
    rec = _reconstruct(project, imported)
    names0, rot0, sh0 = _star_poses(star)
    names1, rot1, sh1 = _star_poses(sim_file(rec, "particles.star"))
    assert [n.split("@")[0] for n in names1] == [n.split("@")[0] for n in names0]
    angle = so3.rotation_angle_deg(rot0, rot1)
    print("RELION import -> export: largest rotation difference %.2e deg, shift %.2e Å"
          % (angle.max(), np.abs(sh0 - sh1).max()))
    assert angle.max() < 0.01 and np.abs(sh0 - sh1).max() < 1e-3
    _check_map(project, rec, prot, "RELION import -> reconstruct")


def test_cryosparc_import_then_reconstruct(sim):
    from flexplugin.protocols import ProtFlexImportCryoSparc
    project, prot = sim
    imported = launch(project, ProtFlexImportCryoSparc, csFile=sim_file(prot, "particles.cs"))
    parts = imported.outputParticles
    assert parts.getSize() == SIM["numParticles"] and parts.hasCTF() and parts.hasAlignmentProj()
    _check_map(project, _reconstruct(project, imported), prot, "cryoSPARC import -> reconstruct")


def test_paths_with_space_and_quote(sim, tmp_path):
    """A project, and input files, whose paths hold a space and a quote."""
    from flexplugin.protocols import ProtFlexImportCryoSparc, ProtFlexReconstruct
    _, prot = sim
    data = tmp_path / "cs data 'quoted' $HOME"
    data.mkdir()
    for name in ("particles.cs", "particles.mrcs"):
        shutil.copy(sim_file(prot, name), data / name)
    project = new_project("flex proj's space")
    imported = launch(project, ProtFlexImportCryoSparc, csFile=str(data / "particles.cs"))
    rec = launch(project, ProtFlexReconstruct, inputs={"inputParticles": (imported, "outputParticles")},
                 boxSize=16, maxParticles=300)
    assert rec.outputVolume.getDim() == (16, 16, 16)
    assert abs(rec.outputVolume.getSamplingRate() - 6.0) < 1e-6


def test_validation_messages(sim):
    from flexplugin.protocols import ProtFlexImportCryoSparc, ProtFlexReconstruct
    project, prot = sim
    rec = project.newProtocol(ProtFlexReconstruct, boxSize=33)
    rec.inputParticles.set(prot)
    rec.inputParticles.setExtended("outputParticles")
    assert any("even" in e for e in rec.validate())
    imp = project.newProtocol(ProtFlexImportCryoSparc, csFile="/nonexistent.cs")
    assert any("does not exist" in e for e in imp.validate())
