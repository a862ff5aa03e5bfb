"""MRC volumes and image stacks.

- :func:`read_mrc` / :func:`write_mrc`: whole files (volumes ``vol[z, y, x]``, images ``img[y, x]``,
  stacks ``stack[i, y, x]``), with their voxel size in Å. Writes are atomic.
- :class:`ImageSource`: lazy access to the images of a :class:`ParticleTable` spread over many
  stacks; each stack is memory-mapped once (header parsed here, so a damaged file is reported
  with its name and the problem, never as a numpy traceback).
- :func:`stack_info`: ``(n, ny, nx, apix)`` from the header only; :func:`new_stack` writes a big
  stack chunk by chunk.

Supported data modes: 0 (int8), 1 (int16), 2 (float32), 6 (uint16), 12 (float16).
"""
import contextlib
import io
import os
from collections import OrderedDict

import mrcfile
import numpy as np

from ..errors import InputError

HEADER_BYTES = 1024
MODES = {0: "i1", 1: "i2", 2: "f4", 6: "u2", 12: "f2"}
_WRITE_DTYPES = (np.int8, np.int16, np.float32, np.uint16, np.float16)


class MrcStack:
    """One MRC file opened read-only: header fields plus a lazily created memory map.

    Attributes: ``path``, ``n`` (images / z sections), ``ny``, ``nx``, ``mode``, ``dtype``,
    ``apix`` (Å, from cella / mx; 0 when the header does not say), ``offset`` (data start).
    """

    def __init__(self, path):
        self.path = os.path.abspath(str(path))
        if not os.path.isfile(self.path):
            raise InputError(self.path, "file not found")
        try:
            size = os.path.getsize(self.path)
            with open(self.path, "rb") as f:
                raw = f.read(HEADER_BYTES)
        except OSError as e:
            raise InputError(self.path, "cannot read (%s)" % e.strerror)
        if raw[208:212] != b"MAP " and raw[:2] in (b"\x1f\x8b", b"BZ"):
            raise InputError(self.path, "a compressed file (%s): decompress it first"
                             % ("gzip" if raw[:2] == b"\x1f\x8b" else "bzip2"))
        if len(raw) < HEADER_BYTES:
            raise InputError(self.path, "not an MRC file (%d bytes, shorter than the 1024-byte "
                                        "header)" % len(raw))
        order = _byte_order(raw)
        ints = np.frombuffer(raw, dtype=order + "i4", count=24)
        floats = np.frombuffer(raw, dtype=order + "f4", count=24)
        self.nx, self.ny, self.n = (int(v) for v in ints[0:3])
        self.mode = int(ints[3])
        mx = int(ints[7])
        nsymbt = int(ints[23])
        if self.nx <= 0 or self.ny <= 0 or self.n < 0:
            raise InputError(self.path, "not an MRC file (dimensions %d x %d x %d in the header)"
                             % (self.nx, self.ny, self.n))
        if self.mode not in MODES:
            raise InputError(self.path, "unsupported MRC mode %d (supported: %s)"
                             % (self.mode, ", ".join(str(m) for m in MODES)))
        if nsymbt < 0:
            raise InputError(self.path, "corrupt header (extended header size %d)" % nsymbt)
        self.dtype = np.dtype(order + MODES[self.mode])
        cella_x = float(floats[10])
        self.apix = cella_x / mx if mx > 0 and np.isfinite(cella_x) and cella_x > 0 else 0.0
        self.offset = HEADER_BYTES + nsymbt
        need = self.n * self.ny * self.nx * self.dtype.itemsize
        if size - self.offset < need:
            raise InputError(self.path, "truncated: the header announces %d images of %d x %d "
                             "(mode %d, %d bytes of data) but the file holds only %d"
                             % (self.n, self.ny, self.nx, self.mode, need, max(size - self.offset, 0)))
        self._data = None

    @property
    def data(self):
        """Read-only (n, ny, nx) memory map in the file's own dtype."""
        if self._data is None:
            if self.n == 0:
                self._data = np.zeros((0, self.ny, self.nx), self.dtype)
            else:
                self._data = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset,
                                       shape=(self.n, self.ny, self.nx))
        return self._data

    def read(self, idx):
        """Images ``idx`` (0-based ints) as float32 (len(idx), ny, nx).

        Read with positioned reads (runs of consecutive images at once), not through the memory
        map: the pages stay in the system's file cache instead of this process's resident memory,
        so a pass over a stack larger than RAM keeps the process small.
        """
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            bad = int(idx[(idx < 0) | (idx >= self.n)][0])
            raise InputError(self.path, "image %d requested (1-based) but the stack holds %d images"
                             % (bad + 1, self.n))
        size = self.ny * self.nx * self.dtype.itemsize
        out = np.empty((idx.size, self.ny, self.nx), dtype=np.float32)
        order = np.argsort(idx, kind="stable")
        srt = idx[order]
        # runs of consecutive image numbers: one read each
        starts = np.nonzero(np.r_[True, np.diff(srt) != 1])[0]
        ends = np.r_[starts[1:], srt.size]
        with open(self.path, "rb", buffering=0) as f:
            fd = f.fileno()
            for a, b in zip(starts, ends):
                count = int(b - a)
                raw = os.pread(fd, size * count, self.offset + int(srt[a]) * size)
                if len(raw) != size * count:
                    raise InputError(self.path, "truncated while reading image %d" % (int(srt[a]) + 1))
                out[order[a:b]] = np.frombuffer(raw, dtype=self.dtype).reshape(count, self.ny, self.nx)
        return out


def _byte_order(raw):
    """'<' or '>' from the machine stamp (bytes 212-215), guessing from the mode when it is unset."""
    stamp = raw[212]
    if stamp == 0x44:
        return "<"
    if stamp == 0x11:
        return ">"
    little = int(np.frombuffer(raw, "<i4", count=1, offset=12)[0])
    big = int(np.frombuffer(raw, ">i4", count=1, offset=12)[0])
    return ">" if little not in MODES and big in MODES else "<"


def stack_info(path):
    """(n images, ny, nx, apix in Å) of an MRC file, from its header only."""
    s = MrcStack(path)
    return s.n, s.ny, s.nx, s.apix


def read_mrc(path):
    """Read a whole MRC file -> (float32 array, apix in Å, 0 when the header gives none).

    A file with one section is returned as an image ``img[y, x]``; otherwise ``vol[z, y, x]`` (a
    volume or an image stack).
    """
    s = MrcStack(path)
    data = np.array(s.data, dtype=np.float32)
    return (data[0] if s.n == 1 else data), s.apix


def write_mrc(path, array, apix, origin_centered=False):
    """Write ``array`` to ``path`` (atomically) with voxel size ``apix`` Å.

    A ``.mrcs`` path is written as an image stack (a 2D array becomes a stack of one); otherwise a 2D
    array is an image and a 3D array a volume. int8/int16/uint16/float16/float32 data keep their
    dtype, anything else is written as float32. With ``origin_centered`` the header origin is set so
    that voxel ``D//2`` of each axis sits at 0 Å (the engine's grid convention).
    """
    path = os.path.abspath(str(path))
    data = np.asarray(array)
    if data.dtype not in [np.dtype(t) for t in _WRITE_DTYPES]:
        data = data.astype(np.float32)
    stack = path.lower().endswith(".mrcs")
    if stack and data.ndim == 2:
        data = data[None]
    if data.ndim not in (2, 3):
        raise ValueError("write_mrc: expected a 2D or 3D array, got shape %s" % (data.shape,))
    with atomic_path(path) as tmp, mrcfile.new(tmp, overwrite=True) as m:
        m.set_data(np.ascontiguousarray(data))
        if stack:
            m.set_image_stack()
        m.voxel_size = float(apix)
        if origin_centered:
            nz = 1 if (stack or data.ndim == 2) else data.shape[0]
            ny, nx = data.shape[-2:]
            m.header.origin = (-(nx // 2) * apix, -(ny // 2) * apix, -(nz // 2) * apix)


@contextlib.contextmanager
def new_stack(path, n, box, apix):
    """Create a float32 stack of ``n`` images ``box`` x ``box`` and yield its writable (n, box, box)
    memory map, so big stacks are written in chunks; the file appears (atomically) on success."""
    with atomic_path(path) as tmp:
        with mrcfile.new_mmap(tmp, shape=(n, box, box), mrc_mode=2, overwrite=True) as m:
            m.set_image_stack()
            m.voxel_size = float(apix)
            yield m.data
            m.update_header_stats()


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary name next to ``path``; on success it replaces ``path`` in one step.

    When writing fails ``path`` keeps its earlier content (or stays absent), and an OSError of
    the writing (a read-only folder, a full disk) is raised again naming ``path`` itself, not the
    temporary file, so the command line can say which output could not be written."""
    path = os.path.abspath(str(path))
    tmp = os.path.join(os.path.dirname(path), ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if e.filename == path:
            raise
        raise OSError(e.errno, e.strerror or "write failed (%s)" % e, path) from e
    finally:
        try:
            os.remove(tmp)
        except OSError:
            pass


def save_npy(path, array):
    """``np.save`` to ``path`` (exactly that name), atomically.

    Serialised in memory first: ``np.save`` to a file writes the data with C stdio, whose failure
    on a full disk numpy does not report (the file would silently be cut short)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(buf.getbuffer())


def save_txt(path, array, fmt="%.9g", header=""):
    """``np.savetxt`` to ``path``, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savetxt(f, array, fmt=fmt, header=header)


def save_npz(path, **arrays):
    """``np.savez`` to ``path`` (exactly that name), atomically (serialised in memory first)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(buf.getbuffer())


def find_stack(name, ref_file, datadir=None):
    """Absolute path of the image stack ``name`` referenced by the metadata file ``ref_file``.

    A relative name is looked up under ``datadir`` (when given), then the folder of ``ref_file`` and
    each of its parents (RELION and cryoSPARC write project-relative paths); with ``datadir`` its
    base name is finally tried there too (data moved to a new folder). Raises InputError naming the
    stack and ``ref_file`` when none exists.
    """
    tried = []
    if os.path.isabs(name):
        tried.append(name)
    else:
        if datadir:
            tried.append(os.path.join(datadir, name))
        folder = os.path.dirname(os.path.abspath(ref_file))
        while True:
            tried.append(os.path.join(folder, name))
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
    if datadir:
        tried.append(os.path.join(datadir, os.path.basename(name)))
    for candidate in tried:
        if os.path.isfile(candidate):
            return os.path.normpath(os.path.abspath(candidate))
    raise InputError(ref_file, "image stack %r not found (looked for %s)"
                     % (name, ", ".join(tried[:3]) + (", ..." if len(tried) > 3 else "")))


class ImageSource:
    """Lazy images of a ParticleTable: ``len(src)``, ``src.get(rows) -> (n, box, box) float32``.

    Stacks are opened on first use and their memory maps cached (at most ``max_open`` at once, the
    least recently used being closed first, so tens of thousands of micrograph stacks do not exhaust
    file handles). Only the requested images are read. Picklable (the cache is not carried), so it
    can be handed to DataLoader workers.
    """

    def __init__(self, table, max_open=256):
        self.table = table
        self.max_open = max_open
        self._open = OrderedDict()

    def __len__(self):
        return len(self.table)

    def __getstate__(self):
        return {"table": self.table, "max_open": self.max_open}

    def __setstate__(self, state):
        self.__init__(state["table"], state["max_open"])

    def stack(self, k):
        """The :class:`MrcStack` of ``table.stacks[k]``, checked to hold square ``box`` images."""
        s = self._open.get(k)
        if s is not None:
            self._open.move_to_end(k)
            return s
        s = MrcStack(self.table.stacks[k])
        if s.ny != s.nx:
            raise InputError(s.path, "images are not square (%d x %d pixels)" % (s.nx, s.ny))
        if s.nx != self.table.box:
            first = self.table.stacks[0]
            raise InputError(s.path, "image size %d x %d differs from the %d px images of %s "
                             "(the first stack of %s): all stacks of a set must have one size"
                             % (s.nx, s.ny, self.table.box, first,
                                self.table.source or "this particle set"))
        self._open[k] = s
        while len(self._open) > self.max_open:
            self._open.popitem(last=False)
        return s

    def get(self, rows):
        """Images of particles ``rows`` (ints, table order) as a float32 (len(rows), box, box) array."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self.table)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            bad = int(rows[(rows < 0) | (rows >= n)][0])
            raise InputError(self.table.source or "particles",
                             "particle index %d out of range (%d particles)" % (bad, n))
        box = self.table.box
        out = np.empty((rows.size, box, box), dtype=np.float32)
        sid = self.table.stack_id[rows]
        idx = self.table.index[rows]
        for k in np.unique(sid):
            sel = np.nonzero(sid == k)[0]
            out[sel] = self.stack(int(k)).read(idx[sel])
        return out
