"""The decoder-server client against a fake server script that speaks the ``flexplugin serve``
protocol with numpy only (fake_serve.py; against the engine's own server:
test_click_real_server.py)."""
import os
import sys

import numpy as np
import pytest

from flexplugin.viewers.serve_client import DecoderClient, DecoderError


def test_client_round_trip(fake_server, tmp_path):
    script, make_map = fake_server
    z = np.array([[0.5, -1.0, 2.0, 0.0], [-1.0, 0.0, 0.0, 3.0]])
    with DecoderClient([sys.executable, script]) as dec:
        assert (dec.method, dec.zdim, dec.box, dec.apix) == ("fake", 4, 24, 4.0)
        maps = dec.decode(z)
        assert len(maps) == 2 and maps[0].dtype == np.float32 and maps[0].shape == (24, 24, 24)
        for m, v in zip(maps, z):
            np.testing.assert_array_equal(m, make_map(v.astype(np.float32), 24))
        assert dec.decode(z[0], box=16)[0].shape == (16, 16, 16)      # one vector, other box
        files = dec.decode_to_files(z, tmp_path / "maps")
        assert [os.path.basename(f) for f in files] == ["vol_000.npy", "vol_001.npy"]
        np.testing.assert_array_equal(np.load(files[1]), maps[1])
        with pytest.raises(ValueError, match="zdim is 4"):
            dec.decode([[1.0, 2.0]])                                     # checked client-side
        with pytest.raises(DecoderError, match="must have 4 values"):
            dec.request({"z": [[1.0, 2.0]]})                             # the server's error answer
        np.testing.assert_array_equal(dec.decode(z[:1])[0], maps[0])    # still serving
        proc = dec._proc
    assert proc.poll() == 0 and not dec.alive                            # quit, not killed
    dec.close()                                                          # idempotent


def test_client_reports_server_failure(fake_server):
    script, _ = fake_server
    with pytest.raises(DecoderError, match="no such checkpoint"):
        DecoderClient([sys.executable, script, "--die"], ready_timeout=30)
    with pytest.raises(DecoderError, match="cannot start"):
        DecoderClient(["/nonexistent/flexplugin", "serve"])
