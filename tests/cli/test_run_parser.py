"""``fog run``'s fast command-line reader agrees with its argparse parser, or defers to it."""

from __future__ import annotations

import pytest

from foglayer.cli._run import _fast_parse, _parser

LINES = [
    ["m.wasm"],
    ["m.wasm", "a", "--stats", "-x"],
    ["--dir", "/tmp", "--dir=/tmp:/t:ro", "--env", "A=1", "--env=B=2", "m.wasm", "x"],
    ["--max-memory", "64MiB", "--fuel", "1000", "--timeout=1.5", "--stats", "m.wasm"],
    ["-o", "json", "m.wasm"], ["--output=yaml", "m.wasm"],
    ["--checkpointable", "--checkpoint-to", "s.fogsnap", "--checkpoint-every", "2",
     "--stop-after-checkpoint", "--with-files", "m.wasm", "y"],
]
DEFERRED = [
    ["--help"], [], ["--stats"], ["--fuel", "-3", "m.wasm"], ["--fuel", "x", "m.wasm"],
    ["--timeout", "0", "m.wasm"], ["-o", "xml", "m.wasm"], ["--time", "1", "m.wasm"],
    ["--", "m.wasm"], ["m.wasm", "--", "y"], ["--env", "-X=1", "m.wasm"], ["--stats=1", "m.wasm"], ["--dir"],
]


@pytest.mark.parametrize("argv", LINES, ids=" ".join)
def test_fast_reader_reads_as_argparse_does(argv):
    fast = _fast_parse(argv)
    assert fast is not None
    assert vars(fast) == vars(_parser().parse_args(argv))


@pytest.mark.parametrize("argv", DEFERRED, ids=" ".join)
def test_anything_unusual_goes_to_argparse(argv):
    assert _fast_parse(argv) is None
