"""Scipion <-> engine files (Scipion side: pwem + numpy, never torch).

- :func:`writeParticlesStar`: a ``SetOfParticles`` -> RELION 3.1 ``particles.star`` referencing the
  original stacks by index (MRC stacks are never copied; other formats are converted once into
  ``extra/``). Rows follow the set's ids, which is the row order of every engine result.
- :func:`readParticles`: a RELION ``.star`` / cryoSPARC ``.cs`` (read by the engine's numpy-only
  readers) -> particles with CTF and alignment.
- :func:`fillFlexParticles`: engine results (``z.npy`` in star-row order, optional refined poses)
  -> ``SetOfParticlesFlex``.

Alignment convention (identical to scipion-em-relion's): Scipion's projection matrix is
``M = inv([[A, -s], [0, 1]])`` where A is RELION's rotation matrix of (rot, tilt, psi) (the engine's
``so3.euler_to_matrix``) and ``s = (rlnOriginXAngst, rlnOriginYAngst, 0) / pixel size``.
"""
import os

import numpy as np
from pwem.constants import ALIGN_PROJ
from pwem.emlib.image import ImageHandler
from pwem.objects import Acquisition, CTFModel, Particle, Transform
from pwem.objects.data_flexhub import ParticleFlex

from .constants import ROTATIONS_FILE, SHIFTS_FILE
from .engine.io import read_particles
from .engine.io.star import write_star
from .engine.io.table import CTF_FIELDS, ParticleTable

MRC_EXTENSIONS = (".mrc", ".mrcs")


# ------------------------------------------------------------------------------- alignment
def matrixToPose(matrix, apix):
    """Scipion 4x4 projection matrix -> (RELION 3x3 rotation, (x, y) shift in Å)."""
    inv = np.linalg.inv(np.asarray(matrix, dtype=np.float64))
    return inv[:3, :3], -inv[:2, 3] * apix


def poseToMatrix(rotation, shiftA, apix):
    """(RELION 3x3 rotation, (x, y) shift in Å) -> Scipion 4x4 projection matrix."""
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:2, 3] = -np.asarray(shiftA, dtype=np.float64) / apix
    return np.linalg.inv(m)


# ------------------------------------------------------------------------------- Scipion -> star
def _stackPath(fileName, extraDir, converted):
    """Absolute path of an MRC stack holding the images of ``fileName`` (converted once if needed)."""
    fileName = fileName.split(":")[0]            # Scipion's "stack.mrc:mrcs" notation
    if fileName.lower().endswith(MRC_EXTENSIONS):
        return os.path.abspath(fileName)
    if fileName not in converted:
        base = os.path.splitext(os.path.basename(fileName))[0]
        out = os.path.join(extraDir, "%s_%d.mrcs" % (base, len(converted) + 1))
        ImageHandler().convertStack(fileName, out)
        converted[fileName] = os.path.abspath(out)
    return converted[fileName]


def _ctfRow(ctf, acq):
    """The engine's CTF columns (CTF_FIELDS) of one particle."""
    values = dict(defocus_u=ctf.getDefocusU(), defocus_v=ctf.getDefocusV(),
                  defocus_angle=ctf.getDefocusAngle(), voltage=acq.getVoltage(),
                  cs=acq.getSphericalAberration(), amp_contrast=acq.getAmplitudeContrast(),
                  phase_shift=ctf.getPhaseShift() or 0.0, bfactor=0.0)
    return [float(values[name]) for name in CTF_FIELDS]


def setToTable(partSet, extraDir):
    """A ``SetOfParticles`` as the engine's ParticleTable (rows in id order). Angles and shifts are
    written only for projection alignment (ALIGN_PROJ); one optics group from the Acquisition."""
    apix, acq = partSet.getSamplingRate(), partSet.getAcquisition()
    withCtf, withPoses = partSet.hasCTF(), partSet.getAlignment() == ALIGN_PROJ
    stacks, stackId, index, ctf, rotations, shifts, converted = {}, [], [], [], [], [], {}
    for p in partSet.iterItems(orderBy="id"):
        idx, fn = p.getLocation()
        path = _stackPath(fn, extraDir, converted)
        stackId.append(stacks.setdefault(path, len(stacks)))
        index.append(max(idx, 1) - 1)
        if withCtf:
            ctf.append(_ctfRow(p.getCTF(), acq))
        if withPoses:
            rotation, shift = matrixToPose(p.getTransform().getMatrix(), apix)
            rotations.append(rotation)
            shifts.append(shift)
    optics = [{"rlnOpticsGroup": "1", "rlnVoltage": repr(float(acq.getVoltage())),
               "rlnSphericalAberration": repr(float(acq.getSphericalAberration())),
               "rlnAmplitudeContrast": repr(float(acq.getAmplitudeContrast()))}]
    array = lambda rows: np.array(rows, dtype=np.float64) if rows else None  # noqa: E731
    return ParticleTable(stacks=list(stacks), stack_id=np.array(stackId), index=np.array(index),
                         apix=apix, box=partSet.getXDim(), rotations=array(rotations),
                         shifts_A=array(shifts), ctf=array(ctf), optics=optics)


def writeParticlesStar(partSet, starFile, extraDir):
    """Write ``partSet`` as a RELION 3.1 star file (see :func:`setToTable`); returns the table."""
    table = setToTable(partSet, extraDir)
    write_star(starFile, table)
    return table


# ------------------------------------------------------------------------------- files -> Scipion
def _projectPath(path):
    """Paths inside the project (the current folder of a running protocol) are stored relative."""
    rel = os.path.relpath(path)
    return path if rel.startswith(os.pardir) else rel


def tableToAcquisition(table):
    """An Acquisition from the first particle's CTF (RELION defaults when there is no CTF)."""
    voltage, cs, q0 = table.ctf[0, 3:6] if table.has_ctf else (300.0, 2.7, 0.1)
    return Acquisition(voltage=float(voltage), sphericalAberration=float(cs),
                       amplitudeContrast=float(q0), magnification=10000.0)


def fillParticles(partSet, table):
    """Fill an empty ``SetOfParticles`` from an engine ParticleTable (CTF and alignment if present)."""
    partSet.setSamplingRate(table.apix)
    partSet.setAcquisition(tableToAcquisition(table))
    partSet.setHasCTF(table.has_ctf)
    if table.has_poses:
        partSet.setAlignmentProj()
    stacks = [_projectPath(s) for s in table.stacks]
    for i in range(len(table)):
        p = Particle()
        p.setLocation(int(table.index[i]) + 1, stacks[table.stack_id[i]])
        if table.has_ctf:
            du, dv, angle = table.ctf[i, :3]
            ctf = CTFModel(defocusU=float(du), defocusV=float(dv), defocusAngle=float(angle))
            ctf.setPhaseShift(float(table.ctf[i, CTF_FIELDS.index("phase_shift")]))
            ctf.standardize()
            p.setCTF(ctf)
        if table.has_poses:
            p.setTransform(Transform(poseToMatrix(table.rotations[i], table.shifts_A[i], table.apix)))
        partSet.append(p)
    return partSet


def readParticles(partSet, path, passthrough=None):
    """Fill ``partSet`` from a RELION star or a cryoSPARC .cs file (+ passthrough)."""
    return fillParticles(partSet, read_particles(path, passthrough=passthrough))


# ------------------------------------------------------------------------------- engine results
def loadPoses(folder):
    """(rotations (N,3,3) RELION, shifts (N,2) Å) an engine run wrote into ``folder``, or None
    when the method did not estimate poses."""
    paths = [os.path.join(folder, name) for name in (ROTATIONS_FILE, SHIFTS_FILE)]
    if not os.path.exists(paths[0]):
        return None
    rotations = np.load(paths[0])
    shifts = np.load(paths[1]) if os.path.exists(paths[1]) else np.zeros((len(rotations), 2))
    return rotations, shifts


def fillFlexParticles(flexSet, inputSet, z, method, modelPath, box, poses=None):
    """Fill an empty ``SetOfParticlesFlex`` with ``inputSet`` plus latent ``z`` (rows in id order).

    ``poses``: optional (rotations, shifts in Å), replacing the input alignment. The FlexInfo
    records the method, its model file, the training box and the latent dimension.
    """
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    if len(z) != inputSet.getSize():
        raise ValueError("%d latent vectors for %d particles" % (len(z), inputSet.getSize()))
    flexSet.copyInfo(inputSet)
    flexSet.setHasCTF(inputSet.hasCTF())          # SetOfParticlesFlex.copyInfo does not copy it
    info = flexSet.getFlexInfo()
    info.setProgName(method)
    info.setAttr("modelPath", str(modelPath))
    info.setAttr("boxSize", int(box))
    info.setAttr("zDim", int(z.shape[1]))
    apix = inputSet.getSamplingRate()
    if poses is not None:
        flexSet.setAlignmentProj()
    for row, particle in enumerate(inputSet.iterItems(orderBy="id")):
        fp = ParticleFlex(progName=method)
        fp.copyInfo(particle)
        fp.setObjId(particle.getObjId())
        fp.setZFlex(z[row].tolist())
        if poses is not None:
            fp.setTransform(Transform(poseToMatrix(poses[0][row], poses[1][row], apix)))
        flexSet.append(fp)
    return flexSet
