"""Particle batches for training and encoding: lazy images with poses and CTF.

:class:`ParticleDataset` reads only the images of the requested rows (``io.ImageSource``), so a
batch costs its own images. Each batch is prepared as the methods expect it
(see :mod:`flexplugin.engine.methods.base`):

- contrast inverted when ``invert`` (stacks with dark protein);
- Fourier-cropped to ``box`` (the pixel size grows by ``table.box / box``);
- multiplied by a soft circular window (1 inside 0.85, 0 at 0.99 of the half box) when ``window``;
- divided by ``scale`` (the unwindowed images' standard deviation, :meth:`estimate_scale`);
- ``rotations`` (RELION matrices; identity when the particles have none and the method allows
  it), ``shifts_px`` (RELION origin in pixels of ``box``),
  ``ctf`` (columns ``io.table.CTF_FIELDS``), ``index`` (table rows).

Indexing with a list of rows returns a whole batch; use :func:`loader` (a DataLoader with
``batch_size=None`` over a sampler of row batches), which works with worker processes because
ImageSource is picklable.
"""
import numpy as np
import torch

from .errors import InputError
from .geometry.fourier import fourier_crop, soft_circular_window
from .io.mrc import ImageSource


class ParticleDataset(torch.utils.data.Dataset):
    def __init__(self, table, box=None, invert=False, window=True, scale=1.0, needs_poses=True):
        if table.rotations is None and needs_poses:
            raise InputError(table.source or "particles",
                             "the particles have no poses (rlnAngleRot/Tilt/Psi or "
                             "alignments3D/pose); this method needs them (run a consensus "
                             "refinement first, or use a method that estimates poses)")
        self.table = table
        self.source = ImageSource(table)
        self.box = table.box if box is None else int(box)
        if self.box > table.box or self.box % 2 or self.box < 2:
            raise InputError("--box", "must be even and at most the image size %d (got %d)"
                             % (table.box, self.box))
        self.apix = table.apix * table.box / self.box
        self.invert, self.scale = invert, float(scale)
        self.window = soft_circular_window(self.box) if window else None

    def __len__(self):
        return len(self.table)

    def images(self, rows):
        """Prepared (len(rows), box, box) float32 images (before scaling)."""
        raw = self.source.get(rows)
        ok = np.isfinite(raw).all(axis=(1, 2))
        if not ok.all():
            row = int(np.asarray(rows).reshape(-1)[np.argmin(ok)])
            t = self.table
            raise InputError(t.stacks[t.stack_id[row]], "image %d (particle %d of %s) contains NaN "
                             "or inf values (run 'flexplugin check' on the particle file)"
                             % (t.index[row] + 1, row + 1, t.source or "the particle set"))
        img = torch.from_numpy(raw)
        if self.invert:
            img = -img
        img = fourier_crop(img, self.box)
        return img * self.window if self.window is not None else img

    def __getitem__(self, rows):
        rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        t = self.table
        batch = {
            "images": self.images(rows) / self.scale,
            "rotations": (torch.as_tensor(t.rotations[rows], dtype=torch.float32)
                          if t.rotations is not None else torch.eye(3).expand(len(rows), 3, 3).clone()),
            "shifts_px": torch.as_tensor(t.shifts_A[rows] / self.apix if t.shifts_A is not None
                                         else np.zeros((len(rows), 2)), dtype=torch.float32),
            "index": torch.as_tensor(rows),
        }
        if t.ctf is not None:
            batch["ctf"] = torch.as_tensor(t.ctf[rows], dtype=torch.float32)
        return batch

    def estimate_scale(self, n=1000, seed=0, windowed=False):
        """Standard deviation of the images over a random sample of up to ``n``: Fourier-cropped
        and inverted as prepared, but *before* the window unless ``windowed``. Like cryoDRGN,
        which divides its (windowed) training images by the std of the unwindowed images' Hartley
        transforms (by Parseval the same number as the real-space std up to a constant); the
        windowed images then have a variance of ~0.65, which weighs the KL term ~1.5x more
        against the MSE than unit variance (measured: benchmarks/RESULTS.md)."""
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(self), min(n, len(self)), replace=False))
        window, self.window = self.window, (self.window if windowed else None)
        try:
            return float(torch.cat([self.images(rows[a:a + 256])
                                    for a in range(0, len(rows), 256)]).std())
        finally:
            self.window = window


class RowBatches(torch.utils.data.Sampler):
    """Row batches over ``rows``: shuffled by ``generator`` each pass when given, else in order.

    With ``world > 1`` (data-parallel training) every process draws the same permutation and
    takes its share ``batch[rank::world]`` of each global batch, so a step of ``world`` processes
    sees the same ``batch_size`` rows as one process would.
    """

    def __init__(self, rows, batch_size, generator=None, rank=0, world=1):
        self.rows, self.batch_size, self.generator = np.asarray(rows), int(batch_size), generator
        self.rank, self.world = int(rank), int(world)

    def __len__(self):
        return (len(self.rows) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        rows = self.rows
        if self.generator is not None:
            rows = rows[torch.randperm(len(rows), generator=self.generator).numpy()]
        for a in range(0, len(rows), self.batch_size):
            batch = rows[a:a + self.batch_size]
            if self.world > 1:
                # Every process needs at least one row: a short last batch is padded from its start.
                batch = np.resize(batch, max(len(batch), self.world))[self.rank::self.world]
            yield batch


def loader(dataset, rows, batch_size, generator=None, num_workers=0, rank=0, world=1):
    """DataLoader of whole batches (see :class:`RowBatches`)."""
    return torch.utils.data.DataLoader(dataset, sampler=RowBatches(rows, batch_size, generator, rank, world),
                                       batch_size=None, num_workers=num_workers,
                                       persistent_workers=False)
