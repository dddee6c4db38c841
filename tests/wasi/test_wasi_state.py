"""The WASI state is plain data: it serializes to JSON and restores, open files included."""

from __future__ import annotations

import json
import os

from _guest import Guest

from foglayer.wasi import Preopen, Wasi, WasiState, abi


def test_state_round_trips_through_json_with_open_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_bytes(b"0123456789abcdef")
    wasi = Wasi.create(["app", "x"], {"K": "V"}, [Preopen(str(data), "/data")])
    g = Guest(wasi)
    rd = g.open(3, "in.txt")
    assert g.read(rd, 4) == b"0123"
    wr = g.open(3, "out.log", abi.O_CREAT, write=True, fdflags=abi.FDFLAG_APPEND)
    g.write(wr, b"first ")
    wasi.state.monotonic_offset_ns += 10**12  # guest clock far ahead of the host's

    text = json.dumps(wasi.state.to_dict())
    wasi.close()
    state = WasiState.from_dict(json.loads(text))
    assert state.args == ["app", "x"] and state.env == {"K": "V"}
    assert [p.guest for p in state.preopens] == ["/data"]
    assert state.fds[rd].offset == 4 and state.fds[rd].guest_path == "/data/in.txt"

    restored = Wasi.restore(state)
    g2 = Guest(restored)
    assert g2.read(rd, 4) == b"4567"  # continues at the saved offset
    g2.write(wr, b"second")  # still appends
    assert (data / "out.log").read_bytes() == b"first second"
    assert state.monotonic_offset_ns > 10**12 - 10**10  # the guest clock did not go back
    restored.close()


def test_state_restores_into_a_remapped_directory(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    (a / "f").write_bytes(b"hello world")
    wasi = Wasi.create(["app"], {}, [Preopen(str(a), "/work")])
    g = Guest(wasi)
    fd = g.open(3, "f")
    g.seek(fd, 6)
    saved = wasi.state.to_dict()
    wasi.close()
    os.rename(a, b)
    state = WasiState.from_dict(saved)
    state.remap({"/work": str(b)})
    restored = Wasi.restore(state)
    assert Guest(restored).read(fd, 5) == b"world"
    restored.close()


def test_state_refuses_unknown_version():
    import pytest

    with pytest.raises(ValueError, match="version"):
        WasiState.from_dict({"version": 99})


# Linux's generic (x86-64) values: what saved state holds on every CPU architecture.
PORTABLE_O_DIRECTORY, PORTABLE_O_NOFOLLOW = 0o200000, 0o400000


def test_saved_open_flags_are_the_same_on_every_architecture(tmp_path):
    """A preopen saved on aarch64 (O_DIRECTORY 0o40000 there) re-opens on x86-64 and back."""
    (tmp_path / "f").write_bytes(b"x")
    wasi = Wasi.create(["app"], {}, [Preopen(str(tmp_path), "/d")])
    fd = Guest(wasi).open(3, "f")
    saved = wasi.state.to_dict()
    wasi.close()
    assert saved["fds"]["3"]["open_flags"] == PORTABLE_O_DIRECTORY  # O_RDONLY | O_DIRECTORY
    assert saved["fds"][str(fd)]["open_flags"] & PORTABLE_O_NOFOLLOW
    state = WasiState.from_dict(saved)
    assert state.fds[3].open_flags == os.O_RDONLY | os.O_DIRECTORY  # this host's bits
    Wasi.restore(state).close()


def test_saved_state_asking_to_truncate_or_create_on_reopen_is_refused(tmp_path):
    import pytest

    (tmp_path / "keep").write_bytes(b"precious")
    wasi = Wasi.create(["app"], {}, [Preopen(str(tmp_path), "/d")])
    fd = Guest(wasi).open(3, "keep")
    saved = wasi.state.to_dict()
    wasi.close()
    for forged in (0o1000 | 2, 0o100 | 1, 3):  # O_TRUNC|O_RDWR, O_CREAT|O_WRONLY, bad mode
        saved["fds"][str(fd)]["open_flags"] = forged
        with pytest.raises(ValueError, match="open_flags"):
            WasiState.from_dict(saved)
    assert (tmp_path / "keep").read_bytes() == b"precious"
