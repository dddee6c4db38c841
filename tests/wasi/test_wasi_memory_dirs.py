"""Read-only directories held in memory (``/run/secrets``): readable, unchangeable, never on
disk, and never in the saved WASI state (program: memdir.c)."""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from _programs import build

from foglayer.runtime import Instance, load_module
from foglayer.wasi import Wasi

SECRETS = {"db_password": b"hunter2-in-memory", "api_token": b"t0k3n"}


@pytest.fixture(scope="module")
def module():
    return load_module(build("memdir"))


def _run(module, wasi: Wasi) -> str:
    with tempfile.TemporaryFile() as out:
        wasi.stdio = (0, out.fileno(), 2)
        for n in (1,):
            wasi.fds[n].host_fd = out.fileno()
        code = Instance(module, wasi).run().exit_code
        out.seek(0)
        text = out.read().decode()
    assert code == 0, text
    return text


def test_guest_reads_memory_files_and_cannot_change_the_directory(module):
    wasi = Wasi.create(["memdir"], {"API_TOKEN": "from-env"},
                       memory_dirs={"/run/secrets": SECRETS})
    out = _run(module, wasi)
    assert "db_password=hunter2-in-memory" in out
    assert f"stat size={len(SECRETS['db_password'])} " in out
    for line in ("write existing: refused errno=63", "create new: refused errno=63",
                 "missing: refused errno=44", "mkdir: -1 errno=63", "unlink: -1 errno=63"):
        assert line in out, out
    assert sorted(ln for ln in out.splitlines() if ln.startswith("entry ")) == \
        ["entry api_token", "entry db_password"]
    assert "env API_TOKEN=from-env" in out


def test_saved_state_names_memory_dirs_but_never_holds_their_bytes(module):
    from foglayer.wasi import SavedStateError, WasiState

    wasi = Wasi.create(["memdir"], memory_dirs={"/run/secrets": SECRETS})
    _run(module, wasi)
    saved = json.dumps(wasi.state.to_dict())
    wasi.close()
    assert "/run/secrets" in saved
    assert "hunter2" not in saved and "t0k3n" not in saved
    with pytest.raises(SavedStateError, match="not handed in"):
        Wasi.restore(WasiState.from_dict(json.loads(saved)))
    again = Wasi.restore(WasiState.from_dict(json.loads(saved)),
                         memory_dirs={"/run/secrets": SECRETS})
    assert "db_password=hunter2-in-memory" in _run(module, again)


def test_memory_file_is_sealed_read_only_memory():
    import foglayer.wasi._memdir as memdir

    fd = memdir.open_file(b"abc")
    try:
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:")
        with pytest.raises(OSError):
            os.write(fd, b"x")
        assert os.pread(fd, 3, 0) == b"abc"
    finally:
        os.close(fd)
