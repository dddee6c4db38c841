"""A snapshot is untrusted input: crafted ones never reach outside the sandbox (issue 14).

Each snapshot here is a real one, written by the format's own writer, then tampered with
as an attacker would (and re-framed with a valid CRC, but without the victim's HMAC).
"""

from __future__ import annotations

import io
import lzma
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from _crafted import meta_dict, replace_blob, tamper, tree, zstd_bomb
from _programs import build, fog

from foglayer.snapshot import (
    CheckpointOptions,
    FilesChanged,
    SnapshotError,
    load_snapshot,
    open_session,
    run_checkpointable,
)
from foglayer.snapshot._run import MAX_MODULE

SECRET = b"canary: must never be read, written, linked or created\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A snap_files run stopped with its four files open under /data, and a canary outside."""
    root = tmp_path_factory.mktemp("untrusted")
    data = root / "data"
    data.mkdir()
    (data / "input.bin").write_bytes(bytes(range(256)) * 160)
    (data / "log.txt").write_bytes(b"first\n")
    (root / "canary.txt").write_bytes(SECRET)
    snap = root / "files.fogsnap"
    with open(os.devnull, "wb") as null:
        o = run_checkpointable(build("snap_files"), ["/data", "900"], stdio=(0, null.fileno(), 2),
                               preopens=_preopens(data), progress=False,
                               options=CheckpointOptions(path=str(snap), countdown=4096,
                                                         after_safepoints=3, stop_after=True,
                                                         with_files=True))
    assert o.stopped
    fds = {d["path"]: d for d in meta_dict(snap)["wasi"]["fds"] if d["preopen"] == 0}
    assert {"input.bin", "out.bin", "log.txt"} <= set(fds)
    return root, data, snap


@pytest.fixture(scope="module")
def plain(world):
    """The same snapshot without its files archive (signed: as this user wrote it)."""
    root, data, snap = world
    s = load_snapshot(snap)
    body = bytes(s.data[:s.meta.blobs["files"].offset])
    s.close()
    return root, data, tamper(snap, root / "plain.fogsnap", lambda m: m["blobs"].pop("files"),
                              data=body, sign=True)


def _preopens(data: Path):
    from foglayer.wasi import Preopen

    return [Preopen(str(data), "/data")]


def _fd(meta: dict, path: str) -> dict:
    return next(d for d in meta["wasi"]["fds"] if d["path"] == path)


def _restore(snap: Path, **kw):
    """Restore in this process, up to the point where the app would run."""
    s = load_snapshot(snap)
    try:
        session = open_session(s, **kw)
    finally:
        s.close()
    session.inst.wasi.close()
    session.inst.close()


def _canary_intact(root: Path) -> None:
    assert (root / "canary.txt").read_bytes() == SECRET
    assert os.stat(root / "canary.txt").st_nlink == 1


def _one_line(r, *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fog: error: "), r.stderr
    for w in words:
        assert w in lines[0], lines[0]


# -- descriptors: named by preopen + relative path, re-opened inside it -------------------


def test_restore_refuses_descriptor_named_by_host_path(plain, tmp_path):
    root, data, snap = plain
    canary = str(root / "canary.txt")

    def host_path(m):
        _fd(m, "input.bin")["host_path"] = canary  # what format 1 trusted

    _one_line(fog("restore", "--dir", f"{data}:/data", tamper(snap, tmp_path / "a", host_path)),
              "bad metadata", "host_path")
    for bad in (canary, "../canary.txt", "sub/../../canary.txt"):
        def path(m, bad=bad):
            _fd(m, "input.bin")["path"] = bad

        with pytest.raises(SnapshotError, match="not a plain path"):
            _restore(tamper(snap, tmp_path / "b", path), dirs={"/data": str(data)})
    _canary_intact(root)


def test_restore_refuses_descriptor_outside_volumes_through_a_symlink(plain, tmp_path):
    root, data, snap = plain
    work = tmp_path / "data"
    work.mkdir()
    for name in ("input.bin", "out.bin", "log.txt", "table.bin"):
        if (data / name).exists():
            (work / name).write_bytes((data / name).read_bytes())
    (work / "input.bin").unlink()
    (work / "input.bin").symlink_to(root / "canary.txt")  # absolute: out of the sandbox
    r = fog("restore", "--force", "--dir", f"{work}:/data", tamper(snap, tmp_path / "s"))
    _one_line(r, "fd 4", "input.bin", "refused")
    assert SECRET.decode() not in r.stdout
    (work / "input.bin").unlink()
    (work / "input.bin").symlink_to("../../canary.txt")  # relative, climbing out
    with pytest.raises(SnapshotError, match="fd 4"):
        _restore(tamper(snap, tmp_path / "s"), dirs={"/data": str(work)}, force=True)
    _canary_intact(root)


def test_restore_never_creates_or_truncates(plain, tmp_path):
    root, data, snap = plain
    work = tmp_path / "data"
    work.mkdir()
    for p in data.iterdir():
        (work / p.name).write_bytes(p.read_bytes())
    before = {p.name: p.read_bytes() for p in work.iterdir()}

    def flags(m):  # what made format 1 truncate a file
        _fd(m, "log.txt")["open_flags"] = os.O_WRONLY | os.O_TRUNC | os.O_CREAT

    with pytest.raises(SnapshotError, match="open_flags"):
        _restore(tamper(snap, tmp_path / "a", flags), dirs={"/data": str(work)})

    def create(m):
        _fd(m, "log.txt")["path"] = "created.txt"

    with pytest.raises(SnapshotError, match="cannot re-open"):
        _restore(tamper(snap, tmp_path / "b", create), dirs={"/data": str(work)}, force=True)
    assert not (work / "created.txt").exists()
    # The real thing re-opens every file for writing as before: nothing truncated.
    _restore(tamper(snap, tmp_path / "c"), dirs={"/data": str(work)}, force=True)
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before


def test_restore_refuses_writes_in_a_read_only_preopen(plain, tmp_path):
    _root, data, snap = plain

    def readonly(m):
        m["wasi"]["preopens"][0]["readonly"] = True

    with pytest.raises(SnapshotError, match="read-only preopen"):
        _restore(tamper(snap, tmp_path / "a", readonly), dirs={"/data": str(data)}, force=True)


def test_restore_grants_recorded_host_dirs_only_to_own_snapshots(plain, tmp_path):
    root, data, snap = plain

    def elsewhere(m):
        m["wasi"]["preopens"][0]["host"] = str(root)  # where the canary is

    forged = tamper(snap, tmp_path / "forged", elsewhere)
    _one_line(fog("restore", "--force", forged), "not trusted", "--dir HOST:/data")
    signed = tamper(snap, tmp_path / "signed", sign=True)  # this user's own key
    assert load_snapshot(signed).trusted and not load_snapshot(forged).trusted


def test_changed_file_is_caught_even_with_size_and_mtime_kept(plain, tmp_path):
    _root, data, snap = plain
    work = tmp_path / "data"
    work.mkdir()
    for p in data.iterdir():
        (work / p.name).write_bytes(p.read_bytes())
        os.utime(work / p.name, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns))
    _restore(snap, dirs={"/data": str(work)})  # unchanged: fine
    st = (work / "input.bin").stat()
    body = bytearray((work / "input.bin").read_bytes())
    body[100] ^= 0xFF  # same size
    (work / "input.bin").write_bytes(bytes(body))
    os.utime(work / "input.bin", ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    with pytest.raises(FilesChanged, match="content differs"):
        _restore(snap, dirs={"/data": str(work)})


# -- --with-files archives --------------------------------------------------------------


def _tar(*members: tuple[str, str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, arg in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "file":
                info.size = len(arg)
                tar.addfile(info, io.BytesIO(arg))
            else:
                info.type = tarfile.LNKTYPE if kind == "hardlink" else tarfile.SYMTYPE
                info.linkname = arg
                tar.addfile(info)
    return buf.getvalue()


def test_archive_with_hard_link_to_outside_is_refused_and_leaves_nothing(world, tmp_path):
    root, _data, snap = world
    crafted = replace_blob(snap, tmp_path / "h", "files", _tar(
        ("dir", "0", b""), ("file", "0/ok.txt", b"fine"),
        ("hardlink", "0/input.bin", str(root / "canary.txt"))))
    to = tmp_path / "to"
    _one_line(fog("restore", "--files-to", to, crafted), "hard link")
    assert not to.exists() or tree(to) == set()
    _canary_intact(root)


def test_archive_symlinks_must_stay_inside(world, tmp_path):
    root, _data, snap = world
    for target in (str(root / "canary.txt"), "../../canary.txt"):
        crafted = replace_blob(snap, tmp_path / "s", "files", _tar(
            ("dir", "0", b""), ("symlink", "0/input.bin", target)))
        with pytest.raises(SnapshotError):
            _restore(crafted, files_to=tmp_path / "to")
        assert not (tmp_path / "to").exists() or tree(tmp_path / "to") == set()
    _canary_intact(root)


def test_archive_unpacks_only_where_the_restore_chose(world, tmp_path):
    _root, _data, snap = world

    def dotdot(m):
        m["wasi"]["preopens"][0]["guest"] = "/.."
        m["wasi"]["preopens"][0]["host"] = str(tmp_path / "chosen-by-the-snapshot")

    crafted = tamper(snap, tmp_path / "dd", dotdot)
    to = tmp_path / "box" / "to"
    _restore(crafted, files_to=to, force=True)
    assert {p.name for p in tmp_path.iterdir()} == {"dd", "box"}
    assert {p.name for p in (tmp_path / "box").iterdir()} == {"to"}
    assert "input.bin" in tree(to / "preopen0")
    with pytest.raises(SnapshotError, match="no directory was chosen"):
        _restore(tamper(snap, tmp_path / "nt"))  # a snapshot with files: the restore says where


def test_archive_is_opened_as_plain_tar_never_probed(world, tmp_path):
    _root, _data, snap = world
    xz = lzma.compress(_tar(("dir", "0", b""), ("file", "0/x", b"hidden")))
    with pytest.raises(SnapshotError, match="cannot unpack"):
        _restore(replace_blob(snap, tmp_path / "xz", "files", xz), files_to=tmp_path / "to")
    assert not (tmp_path / "to").exists()


# -- decompression bombs ----------------------------------------------------------------


BOMB = 256 << 20


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        with pytest.raises(SnapshotError) as e:
            fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert "\n" not in str(e.value)
    return peak


def test_page_bomb_is_refused_before_it_unpacks(world, tmp_path):
    _root, _data, snap = world
    bomb = zstd_bomb(BOMB)
    body = bytes(load_snapshot(snap).data)

    def point(m):
        m["memory"]["table"][0][2:] = [len(body), len(bomb)]  # offset, length

    crafted = tamper(snap, tmp_path / "p", point, data=body + bomb)
    s = load_snapshot(crafted)
    assert _peak(lambda: s.pages()) < 32 << 20
    s.close()


def test_blob_bombs_are_capped_at_declared_size_and_limit(world, tmp_path):
    _root, _data, snap = world
    bomb = zstd_bomb(BOMB)
    lying = load_snapshot(replace_blob(snap, tmp_path / "m", "files", b"x" * 1000,
                                       packed=bomb, size=1000))
    assert _peak(lambda: lying.blob("files", MAX_MODULE)) < 32 << 20
    huge = load_snapshot(replace_blob(snap, tmp_path / "h", "files", b"", size=1 << 40))
    with pytest.raises(SnapshotError, match="over the limit"):
        huge.blob("files", MAX_MODULE)


# -- the metadata: checked whole, one line ----------------------------------------------


def _set(path: str, value):
    def edit(m):
        *keys, last = path.split(".")
        for k in keys:
            m = m[int(k)] if isinstance(m, list) else m[k]
        if isinstance(m, list):
            m[int(last)] = value
        else:
            m[last] = value
    return edit


BAD_FIELDS = {
    "page index out of range": (_set("memory.table.0.0", 70000), "memory.table"),
    "page past memory": (_set("memory.pages", 1), "outside memory"),
    "unknown compression": (_set("memory.compression", "xz"), "compression"),
    "global of wrong type": (_set("globals.0.value", "lots"), "globals[0]"),
    "global type unknown": (_set("globals.0.type", "v128"), "globals"),
    "asyncify buffer outside memory": (_set("asyncify.buffer", 1 << 31), "asyncify"),
    "asyncify used past the buffer": (_set("asyncify.used", 1 << 30), "asyncify"),
    "negative offset": (_set("memory.table.0.2", -1), ">= 0"),
    "negative file offset": (_set("wasi.fds.4.offset", -5), ">= 0"),
    "huge blob": (_set("blobs.module.length", 1 << 62), "past the end"),
    "huge pages": (_set("memory.pages", 1 << 40), "memory.pages"),
    "fd under no preopen": (_set("wasi.fds.4.preopen", 9), "preopen 9"),
    "rights out of range": (_set("wasi.fds.4.rights_base", 1 << 40), "rights_base"),
    "kind of snapshot": (_set("kind", "vm"), "kind"),
    "metadata not an object": (lambda m: m.clear(), "missing required field"),
}


@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_bad_metadata_field_is_one_line_error(world, tmp_path, case):
    _root, _data, snap = world
    edit, words = BAD_FIELDS[case]
    crafted = tamper(snap, tmp_path / "bad", edit)
    with pytest.raises(SnapshotError) as e:
        load_snapshot(crafted)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(crafted)) and "bad metadata" in msg, msg
    assert words in msg, msg


def test_bad_metadata_through_the_cli(world, tmp_path):
    _root, _data, snap = world
    crafted = tamper(snap, tmp_path / "bad", _set("asyncify.buffer", 1 << 31))
    _one_line(fog("restore", crafted), "bad metadata", "asyncify")
    _one_line(fog("inspect", crafted), "bad metadata", "asyncify")
