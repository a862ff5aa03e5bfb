"""The one in-memory particle table every reader produces and every writer consumes.

Conventions (see docs/conventions.md):
- image ``i`` is slice ``index[i]`` (0-based) of stack ``stacks[stack_id[i]]`` (absolute paths);
- ``rotations[i]`` is RELION's matrix A = Euler_angles2matrix(rot, tilt, psi): the image is the
  projection of the volume sampled at A^T r (3D Fourier slice at A^T k);
- ``shifts_A[i]`` is RELION's (rlnOriginXAngst, rlnOriginYAngst): shifting the image by +shift
  centres the particle (the particle sits at -shift from the box centre);
- CTF: defocus U/V in Å (positive = underfocus), angle in degrees, voltage kV, Cs mm, amplitude
  contrast, phase shift in degrees, B-factor in Å^2.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

CTF_FIELDS = ("defocus_u", "defocus_v", "defocus_angle", "voltage", "cs", "amp_contrast",
              "phase_shift", "bfactor")


@dataclass
class ParticleTable:
    stacks: List[str]                       # absolute paths of the image stacks
    stack_id: np.ndarray                    # (N,) int: which stack
    index: np.ndarray                       # (N,) int: 0-based slice in that stack
    apix: float                             # pixel size of the images in Å
    box: int                                # image size in pixels
    rotations: Optional[np.ndarray] = None  # (N,3,3) float64, RELION convention
    shifts_A: Optional[np.ndarray] = None   # (N,2) float64, Å, rlnOriginX/YAngst
    ctf: Optional[np.ndarray] = None        # (N,8) float64, columns CTF_FIELDS
    optics_group: Optional[np.ndarray] = None   # (N,) int, 1-based
    source: str = ""                        # file the table was read from (for messages)
    # Columns we do not interpret, kept so a read -> write round trip keeps every field.
    extra: Dict[str, np.ndarray] = field(default_factory=dict)          # per particle (str arrays)
    optics: List[Dict[str, str]] = field(default_factory=list)          # raw optics rows
    # What the reader changed or assumed, for the user (one line each; train and check print them).
    notes: List[str] = field(default_factory=list)

    def __len__(self):
        return len(self.index)

    @property
    def has_poses(self):
        return self.rotations is not None

    @property
    def has_ctf(self):
        return self.ctf is not None

    def ctf_field(self, name):
        return self.ctf[:, CTF_FIELDS.index(name)]

    def subset(self, rows):
        """A new table with the given rows (indices or boolean mask), in that order."""
        rows = np.arange(len(self))[rows]
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return ParticleTable(
            stacks=list(self.stacks), stack_id=self.stack_id[rows], index=self.index[rows],
            apix=self.apix, box=self.box, rotations=pick(self.rotations),
            shifts_A=pick(self.shifts_A), ctf=pick(self.ctf), optics_group=pick(self.optics_group),
            source=self.source, extra={k: v[rows] for k, v in self.extra.items()},
            optics=list(self.optics))
