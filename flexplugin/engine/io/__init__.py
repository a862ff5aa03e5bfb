"""File formats at the engine's boundary: particle metadata (RELION STAR, cryoSPARC .cs), MRC
images and volumes. Every reader raises :class:`flexplugin.engine.errors.InputError` on bad input."""
import os

from ..errors import InputError
from .cs import read_cs_particles, write_cs
from .mrc import ImageSource, read_mrc, stack_info, write_mrc
from .star import read_star_particles, write_star
from .table import ParticleTable

__all__ = ["read_particles", "read_star_particles", "read_cs_particles", "write_star", "write_cs",
           "read_mrc", "write_mrc", "stack_info", "ImageSource", "ParticleTable", "InputError"]


def read_particles(path, datadir=None, passthrough=None):
    """Read a particle set from a RELION ``.star`` or a cryoSPARC ``.cs`` file.

    ``datadir``: where to look first for image stacks given by relative paths. ``passthrough``: the
    cryoSPARC ``*_passthrough_particles.cs`` holding the fields the ``.cs`` file lacks.
    """
    path = os.path.abspath(str(path))
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".star":
        if passthrough is not None:
            raise InputError(passthrough, "a passthrough file only goes with a cryoSPARC .cs file")
        return read_star_particles(path, datadir=datadir)
    if suffix == ".cs":
        return read_cs_particles(path, passthrough=passthrough, datadir=datadir)
    raise InputError(path, "unknown particle file type %r (expected .star or .cs)" % (suffix or path))
