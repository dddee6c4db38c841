"""Durable services (manifest ``snapshots``): a node killed -9 loses no acknowledged write of
a service with ``snapshots: after-invoke``, and at most the last period with ``every``. Real
nats-server, controller and node processes; the kv example service."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _continuum import running

from foglayer.cluster import NodeSpec, load_manifest, wait_until
from foglayer.cluster._manifest import ManifestError, parse

KV = Path(__file__).resolve().parents[2] / "foglayer" / "examples" / "kvstore.c"
WASM_MANIFEST = "name: {name}\nmodule: {module}\nkind: {kind}\nlimits: {{memory: 16MiB}}\n"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running(tmp_path_factory.mktemp("continuum"),
                 [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge")]) as (c, client):
        yield c, client


def deploy(client, tmp_path: Path, name: str, snapshots: str) -> dict:
    path = tmp_path / f"{name}.yaml"
    path.write_text(WASM_MANIFEST.format(name=name, module=KV, kind="service")
                    + f"snapshots: {snapshots}\npreferences: {{site: edge}}\n")
    (p,) = client.wait(name, client.deploy(load_manifest(path))["generation"], 1, 60)
    assert p["state"] == "running" and p["node"] == "edge"
    return p


def kill_and_wait_elsewhere(c, client, name: str, placed: dict) -> dict:
    c.kill("node-edge")

    def moved():
        p = client.app_placements(name, 1)[0]
        return p if p and p["instance"] != placed["instance"] and p["state"] == "running" \
            else None

    wait_until(moved, 60, f"{name} back on another node")
    p = moved()
    assert p["node"] == "cloud"
    return p


def stored_after(client, name: str, t: float) -> None:
    """Wait until the controller has stored a snapshot of ``name`` that its node took after
    ``t`` (the state's own time: one machine, one clock)."""
    from foglayer.cluster._durable import SNAPSHOTS, decode_record
    from foglayer.snapshot import parse_snapshot

    async def at() -> float:
        kv = await client.client.js.key_value(SNAPSHOTS)
        try:
            snap = parse_snapshot(decode_record((await kv.get(f"{name}.0")).value).state)
        except Exception:  # noqa: BLE001 - none yet
            return 0.0
        snap.close()
        return snap.meta.created

    def stored() -> bool:
        if client.run(at()) > t:
            return True
        client.invoke(name, "put", b"tick=1")  # a call, so that a period snapshots again
        return False

    wait_until(stored, 60, f"a snapshot of {name}")


def restart_edge(c, client) -> None:
    c.start_node("edge")
    wait_until(lambda: client.nodes()["edge"]["state"] == "ready", 60, "edge back")


def test_after_invoke_loses_no_acknowledged_write_when_its_node_is_killed(cluster, tmp_path):
    c, client = cluster
    placed = deploy(client, tmp_path, "kvd", "after-invoke")
    for i in range(20):
        assert client.invoke("kvd", "put", f"k{i}=v{i}".encode()) == b"ok"
    client.invoke("kvd", "put", b"k3=changed")
    client.invoke("kvd", "delete", b"k7")
    try:
        kill_and_wait_elsewhere(c, client, "kvd", placed)
        assert client.invoke("kvd", "count", b"") == b"19"
        for i in range(20):
            if i != 7:
                want = b"changed" if i == 3 else f"v{i}".encode()
                assert client.invoke("kvd", "get", f"k{i}".encode()) == want
        with pytest.raises(Exception, match="no such key"):
            client.invoke("kvd", "get", b"k7")
        # It goes on being durable where it is now: a write there is snapshotted too.
        assert client.invoke("kvd", "put", b"after=move") == b"ok"
        assert any(e["kind"] == "restoring" and "kvd.0" in e["message"]
                   for e in client.events(100))
        restart_edge(c, client)
        moved = client.app_placements("kvd", 1)[0]
        c.kill("node-cloud")  # and its new node dies too: back on edge, with both writes
        wait_until(lambda: (p := client.app_placements("kvd", 1)[0])["state"] == "running"
                   and p["instance"] != moved["instance"], 60, "kvd back on edge")
        assert client.invoke("kvd", "get", b"after") == b"move"
        assert client.invoke("kvd", "get", b"k3") == b"changed"
        c.start_node("cloud")
        wait_until(lambda: client.nodes()["cloud"]["state"] == "ready", 60, "cloud back")
    finally:
        for node in ("edge", "cloud"):
            if c.procs[f"node-{node}"].poll() is not None:
                c.start_node(node)
                wait_until(lambda n=node: client.nodes()[n]["state"] == "ready", 60, "back")
        client.stop("kvd")


def test_every_loses_at_most_the_last_period(cluster, tmp_path):
    c, client = cluster
    placed = deploy(client, tmp_path, "kvp", "{every: 0.5}")
    for i in range(10):
        assert client.invoke("kvp", "put", f"old{i}=x".encode()) == b"ok"
    stored_after(client, "kvp", time.time())  # a period later: the old keys are stored
    for i in range(5):
        client.invoke("kvp", "put", f"new{i}=y".encode())
    try:
        kill_and_wait_elsewhere(c, client, "kvp", placed)
        for i in range(10):
            assert client.invoke("kvp", "get", f"old{i}".encode()) == b"x"
        assert 10 <= int(client.invoke("kvp", "count", b"")) <= 16  # (tick: see stored_after)
    finally:
        restart_edge(c, client)
        client.stop("kvp")


def test_a_new_deploy_of_a_durable_service_starts_fresh(cluster, tmp_path):
    c, client = cluster
    deploy(client, tmp_path, "kvf", "after-invoke")
    client.invoke("kvf", "put", b"a=1")
    client.stop("kvf")
    deploy(client, tmp_path, "kvf", "after-invoke")
    assert client.invoke("kvf", "count", b"") == b"0"
    client.stop("kvf")


@pytest.mark.parametrize("value, why", [
    ("snapshots: sometimes", "snapshots: expected after-invoke or {every: SECONDS}"),
    ("snapshots: {every: 0}", "snapshots: expected after-invoke or {every: SECONDS}"),
    ("snapshots: {every: 1, x: 2}", "snapshots: expected after-invoke"),
])
def test_bad_snapshots_key_is_refused_in_one_line(tmp_path, value, why):
    text = WASM_MANIFEST.format(name="x", module=KV, kind="service") + value + "\n"
    with pytest.raises(ManifestError, match=why.replace("{", r"\{").replace("}", r"\}")) as e:
        parse(text, "x.yaml")
    assert "\n" not in str(e.value)


def test_snapshots_of_a_command_are_refused(tmp_path):
    prog = Path(__file__).resolve().parents[1] / "programs" / "cluster_command.c"
    text = WASM_MANIFEST.format(name="x", module=prog, kind="command") + "snapshots: after-invoke\n"
    with pytest.raises(ManifestError, match="x.yaml: snapshots: only a service"):
        parse(text, "x.yaml")


def test_snapshots_key_becomes_the_spec(tmp_path):
    text = WASM_MANIFEST.format(name="x", module=KV, kind="service")
    assert parse(text + "snapshots: after-invoke\n").spec.snapshots.mode == "after-invoke"
    s = parse(text + "snapshots: {every: 2.5}\n").spec.snapshots
    assert (s.mode, s.every) == ("every", 2.5)
    assert parse(text).spec.snapshots is None


def test_forged_snapshots_are_refused_and_the_stored_one_stays(cluster, tmp_path):
    """What a node sends is untrusted: another node's snapshot of an instance it does not run,
    a chunk that does not match its hash, a state that does not name the pages sent: each is
    refused, and the stored snapshot still restores the service whole."""
    import asyncio

    import msgspec

    from foglayer.cluster._bus import connect
    from foglayer.cluster._durable import H_ROUND, snap_subject
    from foglayer.cluster._move import H_PART
    from foglayer.cluster._protocol import H_CHUNK, H_INSTANCE, Reply, decode, node_inbox
    from foglayer.snapshot import encode_chunk

    c, client = cluster
    placed = deploy(client, tmp_path, "kvx", "after-invoke")
    assert client.invoke("kvx", "put", b"kept=yes") == b"ok"
    page = bytes(range(256)) * 256
    wrong_hash = encode_chunk(0, 0, 200, [(1, "0" * 32, page)], "none")
    too_big = encode_chunk(0, 0, 300, [], "none")  # over its 16 MiB limit
    tampered = bytearray(encode_chunk(0, 0, 200, [], "none"))
    tampered[-40] ^= 1

    async def send(node: str, part: str, data: bytes) -> Reply:
        nc = await connect(creds=c.server.creds(f"node-{node}"),
                           inbox_prefix=node_inbox(node))
        try:
            headers = {H_INSTANCE: placed["instance"], H_ROUND: "0", H_PART: part,
                       H_CHUNK: "0/2"}
            msg = await nc.request(snap_subject(node), data, headers=headers, timeout=10)
            return decode(msg.data, Reply)
        finally:
            await nc.close()

    def refused(node: str, part: str, data: bytes) -> str:
        reply = asyncio.run(send(node, part, data))
        assert not reply.ok
        return reply.error

    assert "node cloud runs no instance" in refused("cloud", "pages", bytes(tampered))
    assert "page 1 does not match its hash" in refused("edge", "pages", wrong_hash)
    assert "over the limit of 256" in refused("edge", "pages", too_big)
    assert "does not match its hash" in refused("edge", "pages", bytes(tampered))
    assert "state: not a foglayer snapshot" in refused("edge", "state", b"FOGSNAP garbage")
    assert "not a list of parts" in refused("edge", "all", b"\xc1 not msgpack")
    assert "page 1 does not match its hash" in refused(
        "edge", "all", msgspec.msgpack.encode([wrong_hash, b"state"]))
    try:
        kill_and_wait_elsewhere(c, client, "kvx", placed)
        assert client.invoke("kvx", "get", b"kept") == b"yes"
    finally:
        restart_edge(c, client)
        client.stop("kvx")


def test_pages_no_snapshot_names_are_deleted(cluster, tmp_path):
    """Each write stores its changed pages once; the pages the last snapshot no longer names
    go, and a stopped app's go with its snapshot, meta entries too (the Object Store keeps a
    deleted object's: one message per page ever collected, unless purged)."""
    c, client = cluster

    def stored(kind: str = "C") -> set[str]:
        # The stored pages' chunk (C) or meta (M) subjects: one chunk a page.
        # Not ObjectStore.list(): on an empty store it waits for an entry that never comes.
        async def names():
            try:
                info = await client.client.js.stream_info(
                    "OBJ_fog-snap-pages", subjects_filter=f"$O.fog-snap-pages.{kind}.>")
            except Exception:  # noqa: BLE001 - no store yet
                return set()
            return set(info.state.subjects or {})

        return client.run(names(), timeout=20)

    before, metas = stored(), stored("M")
    deploy(client, tmp_path, "kvg", "after-invoke")
    for i in range(30):
        assert client.invoke("kvg", "put", b"same=%d" % i) == b"ok"
    assert stored() - before  # the writes stored pages (what follows can fail)
    wait_until(lambda: len(stored() - before) <= 20, 30, "unnamed pages collected")
    assert client.invoke("kvg", "get", b"same") == b"29"
    client.stop("kvg")
    wait_until(lambda: not (stored() - before), 30, "the stopped app's pages collected")
    wait_until(lambda: not (stored("M") - metas), 30, "their meta entries purged")


def test_a_service_moved_live_goes_on_snapshotting_where_it_is(cluster, tmp_path):
    c, client = cluster
    deploy(client, tmp_path, "kvm", "{every: 0.3}")
    client.invoke("kvm", "put", b"before=1")
    client.migrate("kvm", "cloud")
    moved = client.app_placements("kvm", 1)[0]
    assert moved["node"] == "cloud"
    client.invoke("kvm", "put", b"after=2")
    stored_after(client, "kvm", time.time())  # by cloud, the node it was moved to
    try:
        c.kill("node-cloud")
        wait_until(lambda: (p := client.app_placements("kvm", 1)[0])["state"] == "running"
                   and p["instance"] != moved["instance"], 60, "kvm back on edge")
        assert client.invoke("kvm", "get", b"before") == b"1"
        assert client.invoke("kvm", "get", b"after") == b"2"
    finally:
        c.start_node("cloud")
        wait_until(lambda: client.nodes()["cloud"]["state"] == "ready", 60, "cloud back")
        client.stop("kvm")


def test_a_new_leader_goes_on_from_the_stored_snapshots(tmp_path):
    """The leader is killed between two writes: the next one (a delta on the stored snapshot)
    is taken by the new leader, and a lost node's service comes back with both."""
    from foglayer.cluster.bench import _leader

    with running(tmp_path / "c", [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge")],
                 controllers=2) as (c, client):
        placed = deploy(client, tmp_path, "kvl", "after-invoke")
        assert client.invoke("kvl", "put", b"one=1") == b"ok"
        lead = wait_until(lambda: _leader(client), 30, "a leader")
        c.kill(lead)
        new = wait_until(lambda: (h := _leader(client)) and h != lead and h, 60, "a new leader")
        wait_until(lambda: any(e["kind"] == "leader" and e["message"].startswith(f"{new} leads")
                               for e in client.events(50)), 30, "the new leader's take-over")
        # Its first write is a delta on the snapshot the old leader stored (not a resend).
        assert client.invoke("kvl", "put", b"two=2") == b"ok"
        kill_and_wait_elsewhere(c, client, "kvl", placed)
        assert client.invoke("kvl", "get", b"one") == b"1"
        assert client.invoke("kvl", "get", b"two") == b"2"


JOURNAL = Path(__file__).resolve().parents[1] / "programs" / "cluster_journal.c"


def test_a_durable_services_volume_files_come_back_with_it_and_a_forged_tree_is_refused(
        cluster, tmp_path):
    """A C service appends each call's line to /data/journal.txt (a file it keeps open):
    after-invoke, its node killed -9, it comes back elsewhere with every acknowledged line
    in the file and the descriptor at its offset. Then a stored record whose volume
    manifest points outside the volume is refused at the restore, and nothing is written."""
    from foglayer.cluster._durable import SNAPSHOTS, decode_record, encode_record
    from foglayer.snapshot import TreeEntry

    c, client = cluster
    path = tmp_path / "jd.yaml"
    path.write_text(WASM_MANIFEST.format(name="jd", module=JOURNAL, kind="service")
                    + "dirs: [/data]\nsnapshots: after-invoke\npreferences: {site: edge}\n")
    (placed,) = client.wait("jd", client.deploy(load_manifest(path))["generation"], 1, 60)
    assert placed["node"] == "edge"
    lines = [f"line {i}" for i in range(30)]
    for line in lines:
        client.invoke("jd", "append", line.encode())  # acknowledged once stored
    want = "".join(f"{x}\n" for x in lines)
    try:
        p = kill_and_wait_elsewhere(c, client, "jd", placed)
        assert client.invoke("jd", "read").decode() == want
        on_cloud = c.root / "nodes" / "cloud" / "volumes" / "jd" / "0"
        (journal,) = on_cloud.rglob("journal.txt")
        assert journal.read_text() == want
        # The open FILE* goes on at its offset, and what it writes is durable too.
        assert client.invoke("jd", "append", b"after") == str(len(want) + 6).encode()
        assert journal.read_text() == want + "after\n"

        # A forged record (the controller reads it anew when it starts): a file "outside".
        restart_edge(c, client)

        async def forge() -> None:
            kv = await client.client.js.key_value(SNAPSHOTS)
            rec = decode_record((await kv.get("jd.0")).value)
            blocks = next(e.blocks for e in rec.tree if e.kind == "file" and e.blocks)
            bad = [*rec.tree, TreeEntry("../../escape", "file", 0o644, 6, "", blocks[:1])]
            await kv.put("jd.0", encode_record(__import__("msgspec").structs.replace(
                rec, tree=bad)))

        c.kill("controller-0")
        client.run(forge())
        c.start_controller(0)
        c.kill("node-cloud")
        refused = wait_until(lambda: (q := client.app_placements("jd", 1)[0])["instance"]
                             != p["instance"] and "not a plain relative path"
                             in (q.get("error") or "") and q, 90, "the forged tree refused")
        assert refused["node"] == "edge" and refused["state"] != "running"
        assert not list((c.root / "nodes").rglob("escape"))
    finally:
        for node in ("edge", "cloud"):
            if c.procs[f"node-{node}"].poll() is not None:
                c.start_node(node)
                wait_until(lambda n=node: client.nodes()[n]["state"] == "ready", 60, "back")
        client.stop("jd")


def _volume_blocks(client) -> dict[str, int]:
    """The volume blocks in fog-snap-pages (named by a full sha256; pages by 32 hex digits):
    name -> stored (compressed) bytes. Deleted ones left out."""
    import base64
    import re

    from foglayer.cluster._durable import SNAP_PAGES

    async def blocks() -> dict[str, int]:
        js = client.client.js
        info = await js.stream_info(f"OBJ_{SNAP_PAGES}", subjects_filter=f"$O.{SNAP_PAGES}.M.>")
        obs = await js.object_store(SNAP_PAGES)
        out = {}
        for subject in info.state.subjects or {}:
            name = base64.urlsafe_b64decode(subject.rsplit(".", 1)[1]).decode()
            if re.fullmatch("[0-9a-f]{64}", name):
                try:
                    meta = await obs.get_info(name)
                except Exception:  # noqa: BLE001 - deleted (collected)
                    continue
                out[name] = meta.size
        return out

    return client.run(blocks(), timeout=30)


def test_an_append_to_a_big_journal_stores_one_block_and_a_forged_block_list_is_refused(
        cluster, tmp_path):
    """Volume deltas are blocks: the journal service grows its file to ~5 MB (77 blocks: its
    first snapshot goes chunk by chunk, spooled on the node, streamed into the store by the
    leader), then each acknowledged append stores one new block (its last), not the file.
    Killed -9,
    its node's replacement has the journal byte for byte and the open FILE* at its offset.
    A node's forged tree chunk (a block that does not match its hash, a block list that
    does not match the size, a path outside) is refused."""
    import asyncio
    import hashlib
    import os

    import msgspec

    from foglayer.cluster._bus import connect
    from foglayer.cluster._durable import H_ROUND, H_TREE, snap_subject
    from foglayer.cluster._move import H_PART
    from foglayer.cluster._protocol import H_CHUNK, H_INSTANCE, Reply, decode, node_inbox
    from foglayer.snapshot import TREE_BLOCK, TreeEntry
    from foglayer.snapshot._precopy import frame
    from foglayer.snapshot._treecopy import TREE_MAGIC, _manifest_frame

    c, client = cluster
    path = tmp_path / "jb.yaml"
    path.write_text(WASM_MANIFEST.format(name="jb", module=JOURNAL, kind="service")
                    + "dirs: [/data]\nsnapshots: after-invoke\npreferences: {site: edge}\n")
    (placed,) = client.wait("jb", client.deploy(load_manifest(path))["generation"], 1, 60)
    size = int(client.invoke("jb", "pad", b"5000000"))
    assert size == 5000001
    first = _volume_blocks(client)
    assert len(first) >= 76  # the whole file once (its 77 blocks, each once)
    for i in range(6):
        before = _volume_blocks(client)
        line = b"entry %d of the journal" % i
        size = int(client.invoke("jb", "append", line))
        new = {k: v for k, v in _volume_blocks(client).items() if k not in before}
        assert len(new) == 1 and sum(new.values()) <= TREE_BLOCK, new  # the last block only
    async def send(part: str, data: bytes) -> Reply:
        nc = await connect(creds=c.server.creds("node-edge"), inbox_prefix=node_inbox("edge"))
        try:
            headers = {H_INSTANCE: placed["instance"], H_ROUND: "0", H_PART: part,
                       H_CHUNK: "0/2", H_TREE: "1"}
            msg = await nc.request(snap_subject("edge"), data, headers=headers, timeout=10)
            return decode(msg.data, Reply)
        finally:
            await nc.close()

    def refused(part: str, data: bytes) -> str:
        reply = asyncio.run(send(part, data))
        assert not reply.ok
        return reply.error

    block = b"x" * 100
    piece = {"round": 0, "seq": 0, "data_length": 100,
             "pieces": [["journal.txt", 0, 0, 100, "0" * 64]]}
    assert "does not match its sha256" in refused("tree", frame(TREE_MAGIC, piece, [block]))
    sha = hashlib.sha256(block).hexdigest()
    for lie, why in (([TreeEntry("journal.txt", "file", 0o644, 2 * TREE_BLOCK, "", (sha,))],
                      "names 1 blocks, not 2"),
                     ([TreeEntry("../../escape", "file", 0o644, 100, "", (sha,))],
                      "not a plain relative path")):
        assert why in refused("tree", _manifest_frame(0, 0, lie))
        assert why in refused("all", msgspec.msgpack.encode([_manifest_frame(0, 0, lie),
                                                             b"state"]))
    def stray_round() -> set[str]:
        """A round that never commits: past 4 MiB its blocks are stored as they come (the
        leader holds no more of it)."""
        stray = set()
        for seq in range(2):
            blocks = [os.urandom(TREE_BLOCK) for _ in range(40)]
            shas = [hashlib.sha256(b).hexdigest() for b in blocks]
            head = {"round": 0, "seq": seq, "data_length": 40 * TREE_BLOCK,
                    "pieces": [["junk", i * TREE_BLOCK, i * TREE_BLOCK, TREE_BLOCK, sha]
                               for i, sha in enumerate(shas)]}
            assert asyncio.run(send("tree", frame(TREE_MAGIC, head, blocks))).ok
            stray.update(shas)
        assert stray <= set(_volume_blocks(client))
        return stray

    def append(line: bytes) -> int | None:
        try:
            return int(client.invoke("jb", "append", line))
        except Exception:  # noqa: BLE001 - no leader yet (the line is written, not durable)
            return None

    stray = stray_round()  # dropped when the next round comes: collected
    size = int(client.invoke("jb", "append", b"after the forgeries"))
    wait_until(lambda: not stray & set(_volume_blocks(client)), 30,
               "the dropped round's blocks collected")
    stray = stray_round()  # its leader killed: the next one sweeps what no record names
    c.kill("controller-0")
    c.start_controller(0)
    size = wait_until(lambda: append(b"after a new leader"), 60, "a snapshot by a new leader")
    wait_until(lambda: not stray & set(_volume_blocks(client)), 30,
               "the lost round's blocks swept")
    on_edge = c.root / "nodes" / "edge" / "volumes" / "jb" / "0"
    (journal,) = on_edge.rglob("journal.txt")
    want = journal.read_bytes()
    assert len(want) == size
    p = kill_and_wait_elsewhere(c, client, "jb", placed)
    try:
        on_cloud = c.root / "nodes" / "cloud" / "volumes" / "jb" / "0"
        (journal,) = on_cloud.rglob("journal.txt")
        assert journal.read_bytes() == want  # every acknowledged line
        assert client.invoke("jb", "append", b"after") == str(size + 6).encode()
        assert journal.read_bytes() == want + b"after\n"  # at its offset
        assert p["node"] == "cloud"
    finally:
        restart_edge(c, client)
        client.stop("jb")


def test_a_record_from_before_volume_blocks_is_refused_in_one_line_and_its_files_collected():
    """A record stored before blocks named each volume file by its whole sha256: it still
    decodes (its whole files are counted, so they are collected once it goes), and its
    restore is refused with one line saying why, rather than read as blocks."""
    import hashlib

    import msgspec

    from foglayer.cluster._durable import SnapRecord, decode_record
    from foglayer.snapshot import SnapshotError, TreePlan

    class OldEntry(msgspec.Struct, array_like=True):
        path: str
        kind: str
        mode: int
        size: int
        ref: str

    sha = hashlib.sha256(b"hello\n").hexdigest()
    old = msgspec.structs.asdict(SnapRecord("jd", 0, 1, "i", "d", 0, 1, {0: "a" * 32}, b"s",
                                            0.0))
    old["tree"] = [OldEntry("journal.txt", "file", 0o644, 6, sha)]
    rec = decode_record(msgspec.msgpack.encode(old))
    assert rec.blobs() == ["a" * 32, sha]
    with pytest.raises(SnapshotError, match="kept whole .a record from before volume blocks.: not restored"):
        TreePlan(rec.tree, where="the stored snapshot of jd.0")
