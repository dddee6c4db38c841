"""The WASI state is plain data: it serializes to JSON and restores, open files included."""

from __future__ import annotations

import json
import os

import pytest
from _guest import Guest

from foglayer.wasi import Preopen, SavedStateError, Wasi, WasiState, abi


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


# A state read back is untrusted: whatever a descriptor's record says, it is re-opened only
# inside its preopen, never at a host path of its own.


def _saved_with_a_file(tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    (box / "f").write_bytes(b"inside")
    (tmp_path / "secret").write_bytes(b"outside")
    wasi = Wasi.create(["app"], {}, [Preopen(str(box), "/box")])
    fd = Guest(wasi).open(3, "f")
    saved = wasi.state.to_dict()
    wasi.close()
    return saved, fd, box


def _forged(tmp_path, host_path: str):
    saved, fd, box = _saved_with_a_file(tmp_path)
    saved["fds"][str(fd)]["host_path"] = host_path
    return saved, fd


@pytest.mark.parametrize("where", ["/etc/passwd", "{tmp}/secret", "{box}/../secret",
                                   "{box}/./../secret", "{box}x/f", "f", ""])
def test_wasi_state_refuses_a_descriptor_outside_its_preopens(tmp_path, where):
    box = tmp_path / "box"
    saved, fd = _forged(tmp_path, where.format(tmp=tmp_path, box=box))
    with pytest.raises(ValueError, match=f"fd {fd} .*not a path inside a preopen"):
        WasiState.from_dict(saved)


def test_wasi_restore_refuses_host_path_descriptor(tmp_path):
    saved, fd, box = _saved_with_a_file(tmp_path)
    state = WasiState.from_dict(saved)
    state.fds[fd].host_path = "/etc/passwd"  # changed after from_dict's check
    with pytest.raises(SavedStateError, match=f"fd {fd}\\).*not inside a preopen"):
        Wasi.restore(state)
    state.fds[fd].host_path = str(tmp_path / "secret")
    with pytest.raises(SavedStateError, match="not inside a preopen"):
        Wasi.restore(state)


def test_wasi_restore_refuses_descriptor_escaping_by_dotdot(tmp_path):
    saved, fd, box = _saved_with_a_file(tmp_path)
    state = WasiState.from_dict(saved)
    state.fds[fd].host_path = f"{box}/../secret"
    with pytest.raises(SavedStateError, match=f"fd {fd}"):
        Wasi.restore(state)


def test_wasi_restore_refuses_descriptor_through_a_symlink_out(tmp_path):
    saved, fd, box = _saved_with_a_file(tmp_path)
    state = WasiState.from_dict(saved)
    for name, target in (("up", "../secret"), ("abs", str(tmp_path / "secret")),
                         ("dir", str(tmp_path))):
        (box / name).symlink_to(target)
    for path in ("up", "abs", "dir/secret"):
        state.fds[fd].host_path = f"{box}/{path}"  # inside, as written: the walk refuses it
        with pytest.raises(SavedStateError, match=f"fd {fd} .*cannot (be reached inside|re-open)"):
            Wasi.restore(state)


def test_wasi_restore_refuses_a_preopen_descriptor_naming_another_directory(tmp_path):
    saved, fd, box = _saved_with_a_file(tmp_path)
    saved["fds"]["3"]["preopen"] = "/elsewhere"
    with pytest.raises(ValueError, match="fd 3 .*preopen '/elsewhere' is not one"):
        WasiState.from_dict(saved)
    saved["fds"]["3"]["preopen"] = "/box"
    state = WasiState.from_dict(saved)
    state.fds[3].host_path = "/"  # a preopen's descriptor opens the preopen, nothing else
    restored = Wasi.restore(state)
    assert restored.fds[3].host_path == str(box.resolve())
    assert Guest(restored).read(fd, 6) == b"inside"
    restored.close()


def test_wasi_restore_never_reads_the_file_at_a_forged_path(tmp_path):
    # The end to end case: the guest reads what its preopen holds, or the restore is refused.
    saved, fd, box = _saved_with_a_file(tmp_path)
    state = WasiState.from_dict(saved)
    state.fds[fd].host_path = str(tmp_path / "secret")
    state.fds[fd].guest_path = "/box/f"
    with pytest.raises(SavedStateError):
        Wasi.restore(state)
    assert (tmp_path / "secret").read_bytes() == b"outside"
