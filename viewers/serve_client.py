"""Client of the engine's decoder server (``flexplugin serve``), Scipion side (numpy only).

The server is a subprocess speaking JSON lines over its stdin/stdout (no sockets):

- on start it prints ``{"ready": true, "method": name, "zdim": Z, "box": D, "apix": A}``;
- a request is one line ``{"id": ..., "z": [[...], ...], "box": D or null, "out": DIR or null}``;
  with ``out`` the answer is ``{"id": ..., "files": [paths]}``, without it
  ``{"id": ..., "shape": [D, D, D], "dtype": "float32", "arrays": [base64, ...]}`` (little-endian
  float32, C order);
- a bad request is answered ``{"id": ..., "error": "message"}``;
- ``{"cmd": "quit"}`` or the end of its input stops it.

Usage::

    with DecoderClient(["flexplugin", "serve", "--model", model_dir]) as dec:
        vol = dec.decode([z])[0]            # (D, D, D) float32

One request is in flight at a time (a lock serialises callers), so a client may be shared between
the GUI thread and worker threads.
"""
import base64
import collections
import itertools
import json
import os
import queue
import subprocess
import threading
import time

import numpy as np

__all__ = ["DecoderClient", "DecoderError"]

_EOF = object()


class DecoderError(RuntimeError):
    """The decoder server failed to start, died, timed out or answered an error."""


class DecoderClient:
    """A running ``flexplugin serve`` subprocess.

    :param argv: the server's command line (list of strings), e.g. the engine command built by the
        plugin: ``[..., "flexplugin", "serve", "--model", DIR]``.
    :param env: environment of the subprocess (None: inherit this process's).
    :param cwd: working folder of the subprocess.
    :param ready_timeout: seconds to wait for the ready line (loading a model can take a while).
    :param timeout: default seconds to wait for each answer.
    :param wait: wait for the ready line here; with False the server loads its model while the
        caller goes on, and the first request (or :meth:`wait_ready`) waits for it.

    Once ready, ``info`` holds the ready line and ``method``, ``zdim``, ``box``, ``apix`` its
    values (None before).
    """

    def __init__(self, argv, env=None, cwd=None, ready_timeout=120.0, timeout=300.0, wait=True):
        self.argv = [str(a) for a in argv]
        self.timeout = timeout
        self.ready_timeout = ready_timeout
        self.info = self.method = self.zdim = self.box = self.apix = None
        self._start_error = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._answers = queue.Queue()
        self._stderr = collections.deque(maxlen=200)
        self._closed = False
        try:
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, env=env, cwd=cwd, bufsize=-1)
            # Buffered pipes: an answer is one line of ~1.4 MB at D=64, which an unbuffered
            # stream's readline would read one byte per system call (~1 s); requests are flushed.
        except OSError as e:
            raise DecoderError("cannot start the decoder server %s: %s" % (self.argv[0], e))
        self._readers = [
            threading.Thread(target=self._read_stdout, name="decoder-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="decoder-stderr", daemon=True),
        ]
        for t in self._readers:
            t.start()
        if wait:
            self.wait_ready()

    def wait_ready(self):
        """Wait for the server's ready line (once; at most ``ready_timeout`` seconds from here);
        returns ``info``. DecoderError (the server stopped) again on every call when it failed."""
        with self._lock:
            if self.info is None and self._start_error is None:
                try:
                    info = self._wait_ready(self.ready_timeout)
                except BaseException as e:
                    self._start_error = e if isinstance(e, DecoderError) else DecoderError(str(e))
                    self._kill()
                    raise
                self.method = info.get("method")
                self.zdim = int(info["zdim"]) if info.get("zdim") is not None else None
                self.box = int(info["box"]) if info.get("box") is not None else None
                self.apix = float(info["apix"]) if info.get("apix") is not None else None
                self.info = info
            if self._start_error is not None:
                raise self._start_error
            return self.info

    @property
    def ready(self):
        """True once the server said it is ready."""
        return self.info is not None

    # ------------------------------------------------------------------------- reading
    def _read_stdout(self):
        stream = self._proc.stdout
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                try:
                    msg = json.loads(line)
                except ValueError:
                    self._stderr.append("[stdout] " + line)   # not an answer: kept for diagnostics
                    continue
                if isinstance(msg, dict):
                    self._answers.put(msg)
        except (OSError, ValueError):
            pass
        finally:
            self._answers.put(_EOF)

    def _read_stderr(self):
        try:
            for raw in iter(self._proc.stderr.readline, b""):
                self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):
            pass

    def stderr_tail(self, lines=30):
        """The last lines the server wrote on its standard error."""
        # give the stderr reader a moment to catch up with a process that just died
        if self._proc.poll() is not None:
            self._readers[1].join(timeout=1.0)
        return "\n".join(list(self._stderr)[-lines:])

    def _died(self, what):
        code = self._proc.poll()
        tail = self.stderr_tail()
        msg = "decoder server %s (exit status %s)" % (what, code)
        return DecoderError(msg + (":\n" + tail if tail else ""))

    def _next(self, deadline, waiting_for):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DecoderError("decoder server: no answer within the time limit while %s%s"
                                   % (waiting_for, self._tail_suffix()))
            try:
                msg = self._answers.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if msg is _EOF:
                self._answers.put(_EOF)          # later calls fail fast too
                try:
                    self._proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    pass
                raise self._died("stopped while %s" % waiting_for)
            return msg

    def _tail_suffix(self):
        tail = self.stderr_tail(10)
        return (":\n" + tail) if tail else ""

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            msg = self._next(deadline, "starting")
            if msg.get("ready"):
                return msg
            if "error" in msg:
                raise DecoderError("decoder server failed to start: %s" % msg["error"])

    # ------------------------------------------------------------------------- requests
    @property
    def alive(self):
        return not self._closed and self._proc.poll() is None

    def _points(self, z_list):
        z = np.asarray(z_list, dtype=np.float64)
        if z.ndim == 1:
            z = z[None, :]
        if z.ndim != 2:
            raise ValueError("latent points must be a list of vectors, got shape %s" % (z.shape,))
        if self.zdim is not None and z.shape[1] != self.zdim:
            raise ValueError("latent points have %d values, the model's zdim is %d"
                             % (z.shape[1], self.zdim))
        return z

    def request(self, payload, timeout=None):
        """Send one request (a dict; its ``id`` is set here) and return the server's answer."""
        if self._closed:
            raise DecoderError("decoder server already closed")
        self.wait_ready()
        with self._lock:
            rid = next(self._ids)
            payload = dict(payload, id=rid)
            line = (json.dumps(payload) + "\n").encode("utf-8")
            try:
                self._proc.stdin.write(line)
                self._proc.stdin.flush()
            except (OSError, ValueError):
                raise self._died("is not running")
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            while True:
                msg = self._next(deadline, "decoding")
                if msg.get("id") != rid:
                    continue                     # stale answer of a timed-out request
                if "error" in msg:
                    raise DecoderError("decoder server: %s" % msg["error"])
                return msg

    def decode(self, z_list, box=None, timeout=None):
        """Maps at latent points ``z_list`` ((n, zdim) or one vector) -> list of (D, D, D) float32
        arrays (``vol[z, y, x]``). ``box``: decode at this box size (None: the model's)."""
        self.wait_ready()
        z = self._points(z_list)
        msg = self.request({"z": z.tolist(), "box": box, "out": None}, timeout=timeout)
        shape = tuple(int(s) for s in msg["shape"])
        dtype = np.dtype(msg.get("dtype", "float32")).newbyteorder("<")
        out = []
        for b64 in msg["arrays"]:
            arr = np.frombuffer(base64.b64decode(b64), dtype=dtype)
            out.append(arr.reshape(shape).astype(np.float32))
        if len(out) != len(z):
            raise DecoderError("decoder server answered %d maps for %d latent points" % (len(out), len(z)))
        return out

    def decode_to_files(self, z_list, out_dir, box=None, timeout=None):
        """Write the maps at ``z_list`` into ``out_dir`` (MRC, written by the server); returns
        their paths."""
        self.wait_ready()
        z = self._points(z_list)
        out_dir = os.path.abspath(str(out_dir))
        os.makedirs(out_dir, exist_ok=True)
        msg = self.request({"z": z.tolist(), "box": box, "out": out_dir}, timeout=timeout)
        return [str(p) for p in msg["files"]]

    # ------------------------------------------------------------------------- shutdown
    def _kill(self):
        self._closed = True
        if self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                pass
        for s in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            try:
                s.close()
            except (OSError, ValueError):
                pass

    def close(self, timeout=5.0):
        """Ask the server to quit, wait ``timeout`` seconds, then kill it. Idempotent."""
        if self._closed:
            return
        if self.info is None:                    # still loading its model (or failed): nothing to wait for
            self._kill()
            return
        with self._lock:
            self._closed = True
            if self._proc.poll() is None:
                try:
                    self._proc.stdin.write(b'{"cmd": "quit"}\n')
                    self._proc.stdin.flush()
                    self._proc.stdin.close()
                except (OSError, ValueError):
                    pass
                try:
                    self._proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            self._kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            if not self._closed:
                self._kill()
        except Exception:
            pass

    def __repr__(self):
        return "DecoderClient(%s, method=%s, zdim=%s, box=%s, %s)" % (
            " ".join(self.argv[:4]), self.method if hasattr(self, "method") else None,
            getattr(self, "zdim", None), getattr(self, "box", None),
            "running" if self.alive else "closed")
