"""foglayer's native libraries per target machine (``NativeLibrary``): built on the host for
another machine's cache (the arm64 root's, which has no compiler), keyed by content, and found
there without ever looking for zig. The in-root test runs real aarch64 Python under qemu."""

from __future__ import annotations

import subprocess

from foglayer.toolchain import NativeLibrary

EM_AARCH64 = 183


def test_library_for_another_target_is_built_once_by_content(tmp_path):
    src = tmp_path / "seven.c"
    src.write_text("int seven(void) { return 7; }\n")
    builds = tmp_path / "builds"
    lib = NativeLibrary(src)
    path = lib.path("aarch64-linux-gnu.2.36", builds)
    assert path.parent == builds and "aarch64-linux-gnu.2.36" in path.name
    elf = path.read_bytes()
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == EM_AARCH64
    stamp = path.stat().st_mtime_ns
    assert lib.path("aarch64-linux-gnu.2.36", builds) == path
    assert path.stat().st_mtime_ns == stamp  # a hit: nothing rebuilt
    src.write_text("int seven(void) { return 8 - 1; }\n")
    assert lib.path("aarch64-linux-gnu.2.36", builds) != path  # new content, new library


# Run in the root: any process start (a search for zig) fails the test.
_IN_ROOT = """
import subprocess, sys
def _no(*a, **k):
    raise AssertionError(f"started a process in the arm64 root: {a[:1]}")
subprocess.Popen = _no
from foglayer.errors import FogError
from foglayer.runtime import wasi_path
from foglayer.snapshot import dirty_scan_path
from foglayer.toolchain import NativeLibrary, in_arm_root
try:
    NativeLibrary(__import__("pathlib").Path(sys.argv[1])).path()
    missing = "built?"
except FogError as e:
    missing = str(e)
print(in_arm_root(), wasi_path(), dirty_scan_path(), missing, sep="\\n")
"""


def test_run_in_the_arm_root_uses_host_built_libraries_and_never_looks_for_zig(tmp_path):
    from foglayer.cluster import ready_native
    from foglayer.toolchain import arm_root

    root = arm_root()
    ready_native(root)  # what fog up does before an arm node starts
    src = tmp_path / "never_built.c"
    src.write_text("int never(void) { return 0; }\n")
    r = subprocess.run(root.command(["python", "-c", _IN_ROOT, src], binds=[tmp_path]),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    inside, wasi, dirty, missing = r.stdout.splitlines()
    assert (inside, wasi, dirty) == ("True", "native", "native")
    assert "not built, and no compiler in the arm64 root" in missing
