"""The CLI's one-line errors: the shared flag grammar, and library errors (which carry
structured fields, never flags) turned into messages that name the flag to change."""

from __future__ import annotations

import pytest
from _programs import build, fog

from foglayer.runtime import LimitExceeded, Limits, run


@pytest.fixture(scope="module")
def modes():
    return build("rt_modes")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FOG_CACHE_DIR", str(tmp_path / "cache"))


def _one_line(r, code: int = 2) -> str:
    assert r.returncode == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("args, limit, hint", [
    (["--max-memory", "32MiB", "alloc"], "memory", "raise --max-memory"),
    (["--fuel", "100000", "spin"], "fuel", "raise --fuel"),
    (["--timeout", "0.3", "spin"], "timeout", "raise --timeout"),
])
def test_limit_message_names_the_flag_to_raise(modes, args, limit, hint):
    r = fog("run", *args[:-1], modes, args[-1])
    first = next(ln for ln in r.stderr.splitlines() if ln.startswith("fog: "))
    assert r.returncode == 137 and first.startswith(f"fog: limit: {limit}")
    assert first.endswith(f"; {hint}"), first


def test_library_limit_error_carries_fields_not_flags(modes):
    with pytest.raises(LimitExceeded) as info:
        run(modes, ["alloc"], limits=Limits(max_memory=32 << 20))
    e = info.value
    assert (e.limit, e.value, e.remedy) == ("memory", 32 << 20, "max_memory")
    assert "--" not in str(e)


@pytest.mark.parametrize("args, message", [
    (["run", "--dir", ":g", "x.wasm"], "--dir ':g': expected HOST[:GUEST][:ro]"),
    (["run", "--dir", "a:b:c", "x.wasm"], "--dir 'a:b:c': expected HOST[:GUEST][:ro]"),
    (["run", "--env", "=v", "x.wasm"], "--env '=v': expected KEY=VALUE"),
    (["restore", "--dir", "onlyhost", "s.fogsnap"], "--dir 'onlyhost': expected HOST:GUEST"),
    (["restore", "--dir", "h:g:ro", "s.fogsnap"], "--dir 'h:g:ro': expected HOST:GUEST"),
    (["restore", "--dir", "a:/g", "--dir", "b:/g", "s.fogsnap"], "/g is remapped twice"),
    (["node", "--name", "n", "--server", "nats://127.0.0.1:1", "--label", "x"],
     "--label 'x': expected KEY=VALUE"),
    (["node", "--name", "n", "--server", "nats://127.0.0.1:1", "--latency", "edge=fast"],
     "--latency 'edge=fast': expected SITE=MILLISECONDS"),
])
def test_flag_grammar_errors_name_flag_and_text(args, message):
    line = _one_line(fog(*args))
    assert line == f"fog: error: {message}" or message in line, line


def test_dir_host_must_exist_for_run(tmp_path):
    line = _one_line(fog("run", "--dir", f"{tmp_path}/nope:/d:ro", "x.wasm"))
    assert line.endswith(f"{tmp_path}/nope: no such directory")


@pytest.mark.parametrize("args, line", [
    (["up", "--nodes", "cloud=99"], "fog: error: --nodes: 'cloud=99': count must be between 1 and 32"),
    (["up", "--sites", "hub@5"], "fog: error: --sites: 'hub@5': the hub has no link delay (its leaves do)"),
    (["checkpoint", "1"], "fog: error: process 1 is not a checkpointable fog run; "
                          "start it with fog run --checkpointable"),
])
def test_library_errors_get_their_flag_from_the_cli(args, line, tmp_path):
    assert _one_line(fog(*args, "--dir", tmp_path) if args[0] == "up" else fog(*args)) == line


def test_no_cluster_names_the_flags_to_pass(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "FOG_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    line = _one_line(fog("ps", env=env))
    assert line == ("fog: error: no cluster to talk to; run `fog up`, or pass --server URL and "
                    "--creds FILE")


def test_a_checkpoint_path_no_checkpoint_could_be_written_to_is_refused_before_the_run(
        modes, tmp_path):
    # A periodic checkpoint is written by a forked child long after the start: a bad path
    # must be refused up front, or the run ends with no snapshot and no word about it.
    for path, why in ((tmp_path / "nope" / "x.snap", f"no directory {tmp_path / 'nope'}"),
                      (tmp_path, "is a directory")):
        r = fog("run", "--checkpointable", "--checkpoint-every", "0.1", "--checkpoint-to", path,
                modes, "hello")
        line = _one_line(r)
        assert line.startswith(f"fog: error: --checkpoint-to: {path}") and why in line, line
        assert r.stdout == ""  # the app never ran
