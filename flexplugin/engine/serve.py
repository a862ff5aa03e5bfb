"""``flexplugin serve``: a long-lived decoder speaking JSON lines over stdin / stdout.

The model is loaded once; a viewer (or any program) starts ``flexplugin serve --model DIR`` as a
subprocess, writes one request per line on its stdin and reads one answer per line on its
stdout. No network socket is opened.

Protocol (one JSON object per line, UTF-8):

- after loading the model the server prints ``{"ready": true, "method": NAME, "zdim": Z,
  "box": D, "apix": A}`` (the training box and its pixel size in Å); if the model cannot be
  loaded it prints ``{"ready": false, "error": MESSAGE}`` and exits with status 2;
- ``{"id": ANY, "z": [[z_1 ... z_Z], ...], "box": D or null, "out": DIR or null}`` decodes one
  map per latent point (a single flat list is one point), at box D (default: ``--box``, else the
  training box; even, at most the training box):

  - with ``out``: writes ``DIR/vol_000.mrc ...`` (voxel size ``apix * D_train / D``, centred
    origin; earlier ``vol_*.mrc`` in DIR are removed) and answers ``{"id": ID, "files": [absolute
    paths]}``;
  - without: answers ``{"id": ID, "shape": [D, D, D], "dtype": "float32", "arrays": [base64 of
    the little-endian float32 C-order bytes of each map vol[z, y, x]]}``;
- ``{"id": ID, "cmd": "info"}`` answers the ready object with ``"id"`` added;
- ``{"cmd": "quit"}``, or the end of the input, ends the server with status 0;
- a bad request (malformed JSON, wrong number of latent values, bad box, ...) answers
  ``{"id": ID or null, "error": MESSAGE}`` and the server goes on.

Nothing but answers is written to stdout (file descriptor 1 is pointed at stderr while serving,
so stray prints of libraries cannot corrupt the stream); every answer is flushed.
"""
import base64
import io
import json
import os
import sys
import time
import traceback

import numpy as np


class RequestError(Exception):
    """A request the server cannot answer (reported to the client, the server goes on)."""


def ready_info(model):
    info = model.data_info
    return {"ready": True, "method": model.name, "zdim": int(model.zdim), "box": int(info.box),
            "apix": float(info.apix)}


def _stderr(msg):
    print(msg, file=sys.stderr, flush=True)


class Server:
    """Answers requests (dicts) for one loaded model; :meth:`handle_line` is the whole protocol."""

    def __init__(self, model, box=None, log=_stderr, verbose=False):
        self.model = model
        self.box = box
        self.log = log
        self.verbose = verbose
        self.zdim = int(model.zdim)
        self.d0 = int(model.data_info.box)

    def _points(self, raw):
        if raw is None:
            raise RequestError('no "z" in the request (and no "cmd")')
        try:
            z = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise RequestError('"z" must be a list of lists of %d numbers' % self.zdim)
        if z.ndim == 1 and z.size == self.zdim and self.zdim > 0:
            z = z[None]
        if z.ndim == 1 and z.size == 0 and self.zdim == 0:
            z = z.reshape(1, 0)
        if z.ndim != 2 or z.shape[1] != self.zdim:
            raise RequestError('"z" must be a list of latent points of %d values each (got shape %s)'
                               % (self.zdim, list(z.shape)))
        if len(z) == 0:
            raise RequestError('"z" holds no latent point')
        if not np.isfinite(z).all():
            raise RequestError('"z" holds NaN or infinite values')
        return z.astype(np.float32)

    def _box(self, raw):
        box = self.box if raw is None else raw
        if box is None:
            return None
        if isinstance(box, bool) or not isinstance(box, (int, float)) or int(box) != box:
            raise RequestError('"box" must be an even integer (got %r)' % (raw,))
        box = int(box)
        if box < 2 or box % 2 or box > self.d0:
            raise RequestError('"box" must be even and at most the training box %d (got %d)'
                               % (self.d0, box))
        return box

    def decode(self, req):
        import torch
        from .analysis.landscape import decode_maps
        z = self._points(req.get("z"))
        box = self._box(req.get("box"))
        out = req.get("out")
        if out is not None:
            if not isinstance(out, str) or not out:
                raise RequestError('"out" must be a folder name or null')
            try:
                files = decode_maps(self.model, z, out, box=box)
            except OSError as exc:
                raise RequestError("%s: %s" % (out, exc.strerror or exc))
            return {"files": [os.path.abspath(p) for p in files]}
        arrays = []
        shape = None
        for zi in z:
            with torch.no_grad():
                vol = self.model.decode_volume(torch.as_tensor(zi), box=box)
            vol = np.ascontiguousarray(vol.detach().cpu().numpy(), dtype="<f4")
            shape = list(vol.shape)
            arrays.append(base64.b64encode(vol.tobytes(order="C")).decode("ascii"))
        return {"shape": shape, "dtype": "float32", "arrays": arrays}

    def handle_line(self, line):
        """(answer dict or None, keep going) for one input line."""
        line = line.strip()
        if not line:
            return None, True
        try:
            req = json.loads(line)
        except ValueError as exc:
            return {"id": None, "error": "malformed JSON: %s" % exc}, True
        if not isinstance(req, dict):
            return {"id": None, "error": "a request must be a JSON object"}, True
        rid = req.get("id")
        cmd = req.get("cmd")
        if cmd == "quit":
            return None, False
        if cmd == "info":
            return dict(ready_info(self.model), id=rid), True
        if cmd is not None:
            return {"id": rid, "error": "unknown command %r (known: info, quit)" % (cmd,)}, True
        t0 = time.time()
        try:
            answer = self.decode(req)
        except RequestError as exc:
            return {"id": rid, "error": str(exc)}, True
        except Exception as exc:      # a failure of one request must not end the server
            self.log("serve: request %r failed:\n%s" % (rid, traceback.format_exc()))
            return {"id": rid, "error": "%s: %s" % (type(exc).__name__, exc)}, True
        if self.verbose:
            self.log("serve: request %r: %d map(s) in %.3f s" % (rid, len(answer.get("files") or
                                                                    answer.get("arrays")),
                                                                time.time() - t0))
        return dict({"id": rid}, **answer), True


def serve(model, stdin, stdout, box=None, log=_stderr, verbose=False):
    """Serve ``model`` (a loaded Method) reading requests from ``stdin`` and answering on
    ``stdout`` (text streams) until ``quit`` or the end of the input. Returns 0."""
    server = Server(model, box=box, log=log, verbose=verbose)

    def send(obj):
        stdout.write(json.dumps(obj) + "\n")
        stdout.flush()

    try:
        send(ready_info(model))
        while True:
            line = stdin.readline()
            if not line:
                break
            answer, keep_going = server.handle_line(line)
            if answer is not None:
                send(answer)
            if not keep_going:
                break
    except BrokenPipeError:
        log("serve: the client closed the answer stream")
    return 0


def serve_stdio(model_path, box=None, threads=None, verbose=False):
    """The command line's ``serve``: answers go to the process's real stdout, and everything
    else anything prints (to ``sys.stdout`` or file descriptor 1) goes to stderr meanwhile."""
    sys.stdout.flush()
    answer_fd = os.dup(1)
    os.dup2(2, 1)
    saved_stdout = sys.stdout
    sys.stdout = sys.stderr
    answers = os.fdopen(answer_fd, "w", encoding="utf-8")
    try:
        import torch
        if threads:
            torch.set_num_threads(threads)
        from .methods import load_method
        try:
            model = load_method(model_path)
            model.eval()
        except Exception as exc:
            answers.write(json.dumps({"ready": False, "error": "cannot load the model %s: %s"
                                      % (model_path, exc)}) + "\n")
            answers.flush()
            raise
        _stderr("serve: %s model (zdim %d, box %d, %.4f Å/px) from %s"
                % (model.name, model.zdim, model.data_info.box, model.data_info.apix, model_path))
        # Undecodable bytes become a malformed request, not the end of the server.
        requests = (io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
                    if hasattr(sys.stdin, "buffer") else sys.stdin)
        return serve(model, requests, answers, box=box, verbose=verbose)
    finally:
        try:
            answers.flush()
        except (BrokenPipeError, ValueError):
            pass
        os.dup2(answer_fd, 1)
        try:
            answers.close()
        except BrokenPipeError:
            pass
        sys.stdout = saved_stdout
