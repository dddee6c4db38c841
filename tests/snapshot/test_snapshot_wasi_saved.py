"""The WASI state as a snapshot saves it: by preopen and relative path, secrets left out."""

from __future__ import annotations

import msgspec
import pytest
from _guest import Guest

from foglayer.snapshot import _files
from foglayer.wasi import (
    Preopen,
    SavedStateError,
    SavedWasi,
    Wasi,
    abi,
    restore_saved,
    save_state,
)

SECRETS = {"db_password": b"hunter2-in-memory"}


def test_saved_state_names_files_by_preopen_and_restores_elsewhere(tmp_path):
    a = tmp_path / "a"
    (a / "sub").mkdir(parents=True)
    (a / "sub" / "in.txt").write_bytes(b"0123456789")
    wasi = Wasi.create(["app"], {}, [Preopen(str(a), "/data")])
    g = Guest(wasi)
    rd = g.open(3, "sub/in.txt")
    assert g.read(rd, 4) == b"0123"
    wr = g.open(3, "log", abi.O_CREAT, write=True, fdflags=abi.FDFLAG_APPEND)
    g.write(wr, b"one ")
    raw = msgspec.json.encode(save_state(wasi.state))
    wasi.close()
    saved = msgspec.json.decode(raw, type=SavedWasi)
    assert raw.count(str(a).encode()) == 1  # only as where the preopen was, for people
    by_fd = {d.fd: d for d in saved.fds}
    assert (by_fd[rd].preopen, by_fd[rd].path, by_fd[rd].offset) == (0, "sub/in.txt", 4)
    b = tmp_path / "b"
    a.rename(b)
    restored = restore_saved(saved, [str(b)])
    g2 = Guest(restored)
    assert g2.read(rd, 3) == b"456"
    g2.write(wr, b"two")
    assert (b / "log").read_bytes() == b"one two"
    restored.close()


def test_memory_dirs_are_never_saved_and_come_back_from_handed_in_bytes(tmp_path):
    wasi = Wasi.create(["app"], memory_dirs={"/run/secrets": SECRETS})
    g = Guest(wasi)
    fd = g.open(3, "db_password")
    assert g.read(fd, 7) == b"hunter2"
    saved = save_state(wasi.state)
    raw = msgspec.json.encode(saved)
    assert b"hunter2" not in raw
    assert _files.open_files(wasi.state) == []  # not even a hash of a secret
    wasi.close()
    with pytest.raises(SavedStateError, match="not handed in"):
        restore_saved(saved, [""])
    restored = restore_saved(saved, [""], memory_dirs={"/run/secrets": SECRETS})
    assert Guest(restored).read(fd, 100) == b"-in-memory"
    restored.close()
