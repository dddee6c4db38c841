"""Make a command module checkpointable: safepoints, Asyncify, every global exported.

The rewrite runs once per module and is cached by the module's digest:

1. ``wasm2wat`` (after dropping DWARF sections, which ``wasm-opt`` 108 rejects), then a
   text-level pass adds an import ``fog.safepoint``, a countdown and a scratch address.
   Each function that loops or calls keeps the countdown in a local (a register): it
   loads it from the global on entry, stores it back around calls and on exit. Loop
   headers decrement it and, when it runs out, branch *out* of the loop to call the
   safepoint and re-enter the loop header after; the loop's live-in locals pass through
   the scratch area around that call, so that none of the loop's own values is live
   across it. Innermost call-free loops nested in another loop get nothing: the enclosing
   loop's safepoint comes each time they finish, and the hottest loops stay untouched.
   (A call anywhere in a loop makes Cranelift keep values on the stack for the whole
   loop, with no callee-saved float registers; Asyncify's unwind and rewind paths make it
   worse.) Functions that call others also count on entry, so recursion reaches
   safepoints too. ``wat2wasm`` turns it back into binary.
2. ``wasm-opt --asyncify`` with only the safepoint and the WASI imports as unwind points.
3. Every global is exported as ``fog_global_N`` (the stack pointer, the countdown,
   Asyncify's state) so that the host can read and write them all.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from foglayer.snapshot import _wasm
from foglayer.snapshot._errors import RewriteError

REWRITE_VERSION = 6
SAFEPOINT = ("fog", "safepoint")
GLOBAL_PREFIX = "fog_global_"
COUNTDOWN_EXPORT = "fog_countdown"  # the host sets the first countdown through it
DEFAULT_COUNTDOWN = 1 << 16  # loop headers between two safepoint calls
FEATURES = ("--enable-bulk-memory", "--enable-sign-ext", "--enable-mutable-globals",
            "--enable-nontrapping-float-to-int", "--enable-multivalue",
            "--enable-reference-types", "--enable-simd")
# -O1 after Asyncify measured faster under wasmtime than -O2/-O3 (less inlining into the
# big instrumented functions, so fewer values live across the unwind checks).
OPT_FLAGS = ("-O1",)
INSTALL_HINT = "install Debian's binaryen and wabt packages (apt-get install binaryen wabt)"

_G, _C, _SP = "$__fog_countdown", "$__fog_c", "$__fog_safepoint"
_S = "$__fog_scratch"  # where a loop's locals pass through memory around its safepoint
SCRATCH_EXPORT = "fog_scratch"
SCRATCH_SIZE = 65536
_SLOT = {"i32": 8, "i64": 8, "f32": 8, "f64": 8, "v128": 16}
USE_SCRATCH = True
LEAF_COUNT = True
_VAR = re.compile(r"\((param|local) (\$\S+) (\w+)\)")


# -- tools ------------------------------------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RewriteError(f"{name} not found: making a module checkpointable needs it; "
                           f"{INSTALL_HINT}")
    return path


@functools.cache
def tool_versions() -> str:
    out = []
    for name in ("wasm2wat", "wat2wasm", "wasm-opt"):
        proc = subprocess.run([tool(name), "--version"], capture_output=True, text=True)
        out.append(f"{name} {proc.stdout.strip() or proc.stderr.strip()}")
    return "; ".join(out)


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
        raise RewriteError(f"{what} failed: {detail.strip()[:300]}")


# -- step 1: safepoints, at the text level -----------------------------------------------

_CALL = re.compile(r"(call|call_indirect|return_call|return_call_indirect)\b")
_OPEN = re.compile(r"(block|loop|if)\b")
_BRANCH = re.compile(r"(br|br_if|br_table)\b")
_LOOP = re.compile(r"loop( \$\S+)?( \(result [^()]*\))?")
_COMMENT = re.compile(r"\(;.*?;\)")


def _count(label_depth: int | None = None) -> list[str]:
    """Decrement the countdown; call the safepoint in place, or branch out to it."""
    head = [f"local.get {_C}", "i32.const 1", "i32.sub", f"local.tee {_C}", "i32.const 0",
            "i32.le_s"]
    if label_depth is not None:
        return [*head, f"br_if {label_depth}"]
    return [*head, "if", f"call {_SP}", f"local.set {_C}", "end"]


class _Func:
    """Instrument one function of ``wasm2wat`` output (flat, one instruction a line)."""

    def __init__(self, lines: list[str], imports: set[str]) -> None:
        self.lines = lines
        self.imports = imports
        self._next = 0

    def _internal(self, ins: str) -> bool:
        if not _CALL.match(ins):
            return False
        parts = ins.split()
        return not (parts[0] == "call" and len(parts) > 1 and parts[1] in self.imports)

    def _leaf_loops(self, body: list[str]) -> set[int]:
        """Loops (by order) that get no safepoint: innermost loops without calls, inside
        another loop of the same function. The enclosing loop's safepoint comes once each
        time such a loop has run to its end, and the hot loop itself stays free of calls
        (values live across a call are kept on the stack: Cranelift saves no float
        registers across calls, and Asyncify's paths extend what is live across them).
        """
        leaves: set[int] = set()
        stack: list[list] = []  # per open block: [loop number or None, has inner loop/call]
        n = -1
        for ins in body:
            if _OPEN.match(ins):
                if ins.startswith("loop"):
                    n += 1
                    for entry in stack:
                        if entry[0] is not None:
                            entry[1] = True
                    stack.append([n, False])
                else:
                    stack.append([None, False])
            elif ins == "end" and stack:
                num, busy = stack.pop()
                if num is not None and not busy and any(e[0] is not None for e in stack):
                    leaves.add(num)
            elif self._internal(ins):
                for entry in stack:
                    entry[1] = True
        return leaves

    def _id(self) -> int:
        self._next += 1
        return self._next

    def _slots(self, header: str, locals_: list[str]) -> dict[str, tuple[str, int]] | None:
        """Each local's type and scratch offset, or None when one cannot go through memory
        (a reference, an unnamed local)."""
        decl = " ".join([header, *locals_])
        names = _VAR.findall(decl)
        if decl.count("(param") + decl.count("(local") != len(names):
            return None
        slots, off = {}, 0
        for _kind, name, ty in names:
            size = _SLOT.get(ty)
            if size is None:
                return None
            off = (off + size - 1) // size * size
            if off + size > SCRATCH_SIZE:
                return None
            slots[name] = (ty, off)
            off += size
        return slots

    def _through_memory(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Code that stores locals to the scratch area, and code that loads them back.

        Around a loop's safepoint call, the loop's live-in locals go to memory and come
        back as new values, so that no value of the hot loop is live across the call: the
        register allocator then keeps the loop's values in registers instead of spilling
        them for the call (Cranelift has no callee-saved float registers).
        """
        save, load = [], []
        for name in names:
            ty, off = self.slots[name]
            save += [f"global.get {_S}", f"local.get {name}", f"{ty}.store offset={off}"]
            load += [f"global.get {_S}", f"{ty}.load offset={off}", f"local.set {name}"]
        return save, load

    def _clobber(self, names: list[str]) -> list[str]:
        out = ["i32.const 0", f"local.set {_C}"]  # the call sets it anew
        for name in names:
            ty, _ = self.slots[name]
            out += ["v128.const i64x2 0 0" if ty == "v128" else f"{ty}.const 0", f"local.set {name}"]
        return out

    def rewrite(self) -> list[str] | None:
        lines = list(self.lines)
        lines[-1] = lines[-1][:-1]  # the function's closing parenthesis
        header = lines[0]
        k = 1
        while k < len(lines) and lines[k].lstrip().startswith("(local"):
            k += 1
        locals_, body = lines[1:k], [ln.strip() for ln in lines[k:]]
        self.slots = self._slots(header, locals_) if USE_SCRATCH else None
        body = [_COMMENT.sub("", ln.split(";;")[0]).strip() for ln in body]
        body = [ln for ln in body if ln]
        leaves = self._leaf_loops(body)
        nloop = -1
        # Per open loop: each local's first use inside it ("get" first: live at its header).
        first: dict[int, dict[str, str]] = {}
        has_loop = any(_LOOP.match(ln) or ln.startswith("loop") for ln in body)
        calls = any(self._internal(ln) for ln in body)
        if not has_loop and not calls:
            return None
        out = [header, *locals_, f"(local {_C} i32)", f"global.get {_G}", f"local.set {_C}"]
        if calls:
            out += _count()
        m = re.search(r"\(result ([^()]*)\)", header)
        out.append("block" + (f" (result {m.group(1)})" if m else ""))
        exit_id = self._id()
        old = [exit_id]  # the original labels, outermost first (the function's own = exit)
        new = [self._id(), exit_id]  # the labels in the rewritten function
        loops: dict[int, tuple[int, int, int]] = {}

        def depth(label: int) -> int:
            return len(new) - 1 - new.index(label)

        for ins in body:
            if ins.startswith(("try", "catch", "delegate", "rethrow")):
                raise RewriteError("exception handling (try/catch) is not supported")
            if _OPEN.match(ins):
                lid = self._id()
                lm = _LOOP.fullmatch(ins)
                leaf = False
                if ins.startswith("loop"):
                    nloop += 1
                    leaf = nloop in leaves  # no safepoint: the enclosing loop has one
                if lm and not leaf:
                    done, again, out_to_sp = self._id(), self._id(), self._id()
                    out += [f"block{lm.group(2) or ''}", "loop", "block", ins]
                    new += [done, again, out_to_sp, lid]
                    out += _count(depth(out_to_sp))
                    loops[lid] = (done, again, out_to_sp)
                    first[lid] = {}
                else:
                    out.append(ins)
                    new.append(lid)
                    if leaf and LEAF_COUNT:  # count the work; the enclosing loop checks
                        out += [f"local.get {_C}", "i32.const 1", "i32.sub", f"local.set {_C}"]
                    elif ins.startswith("loop") and not leaf:  # a loop with parameters
                        out += _count()
                old.append(lid)
            elif ins == "end":
                lid = old.pop()
                new.pop()
                out.append("end")
                if lid in loops:
                    done, again, out_to_sp = loops.pop(lid)
                    out += [f"br {depth(done)}", "end"]  # the loop ended normally
                    new.pop()
                    # Out of the loop: locals through memory, the safepoint, locals back.
                    # Asyncify saves the first reloaded values if it unwinds here; the loop
                    # goes on with the second ones, so its own values die before the call.
                    uses = first.pop(lid)
                    live = [n for n in (self.slots or {}) if uses.get(n) == "get"]
                    save, load = self._through_memory(live) if self.slots else ([], [])
                    clobber = self._clobber(live) if self.slots else []
                    out += [*save, *clobber, f"call {_SP}", f"local.set {_C}", *load,
                            f"br {depth(again)}", "end"]
                    new.pop()
                    out += ["unreachable", "end"]
                    new.pop()
            elif _BRANCH.match(ins):
                op, *targets = ins.split()
                fixed = [t if t.startswith("$") else str(depth(old[-1 - int(t)])) for t in targets]
                out.append(" ".join([op, *fixed]))
            elif ins.startswith(("local.get ", "local.set ", "local.tee ")):
                op, name = ins.split()[:2]
                kind = "get" if op == "local.get" else "set"
                for uses in first.values():
                    uses.setdefault(name, kind)
                out.append(ins)
            elif self._internal(ins):
                out += [f"local.get {_C}", f"global.set {_G}", ins]
                if not ins.startswith("return_"):
                    out += [f"global.get {_G}", f"local.set {_C}"]
            elif re.match(r"return\b", ins):
                out += [f"local.get {_C}", f"global.set {_G}", ins]
            else:
                out.append(ins)
        if old != [exit_id]:
            raise RewriteError("unbalanced blocks in the module's text form")
        out += ["end", f"local.get {_C}", f"global.set {_G})"]
        return out


def instrument(wat: str, countdown: int = DEFAULT_COUNTDOWN) -> str:
    """Add the safepoint import, the countdown global and the counting code to ``wat``."""
    text = wat.rstrip()
    if not text.startswith("(module") or not text.endswith(")"):
        raise RewriteError("unexpected text form from wasm2wat")
    lines = text[:-1].split("\n")
    items: list[list[str]] = []
    for ln in lines[1:]:
        if ln.startswith("  (") or not items:
            items.append([ln])
        else:
            items[-1].append(ln)
    imports = set()
    for it in items:
        m = re.match(r'  \(import "[^"]*" "[^"]*" \(func (\$\S+)', it[0])
        if m:
            imports.add(m.group(1))
    if any(_SP in it[0] or _G in it[0] for it in items):
        raise RewriteError("the module is already checkpointable")
    kinds = [it[0].split()[0].lstrip("(") for it in items]
    last_import = max((i for i, k in enumerate(kinds) if k in ("import", "type")), default=-1)
    last_global = max((i for i, k in enumerate(kinds) if k == "global"), default=-1)
    out = [lines[0]]
    scratch = f"  (global {_S} (export \"{SCRATCH_EXPORT}\") (mut i32) (i32.const 0))"
    if last_import < 0:
        out.append(f'  (import "{SAFEPOINT[0]}" "{SAFEPOINT[1]}" (func {_SP} (result i32)))')
    for i, it in enumerate(items):
        if kinds[i] == "func" and len(it) > 1:
            out.extend(_Func(it, imports).rewrite() or it)
        else:
            out.extend(it)
        if i == last_import:
            out.append(f'  (import "{SAFEPOINT[0]}" "{SAFEPOINT[1]}" (func {_SP} (result i32)))')
        if i == max(last_global, last_import):
            out.append(f'  (global {_G} (export "{COUNTDOWN_EXPORT}") (mut i32) '
                       f"(i32.const {countdown}))")
            out.append(scratch)
    out[-1] += ")"
    return "\n".join(out) + "\n"


# -- the pipeline ----------------------------------------------------------------------


def rewrite_bytes(wasm: bytes) -> bytes:
    """The checkpointable form of ``wasm`` (no cache)."""
    imports = _wasm.imports(wasm)
    if SAFEPOINT in {(m, n) for m, n, _ in imports}:
        raise RewriteError("the module is already checkpointable")
    wasi = sorted({f"{m}.{n}" for m, n, kind in imports
                   if kind == _wasm.KIND_FUNC and m == "wasi_snapshot_preview1"})
    with tempfile.TemporaryDirectory(prefix="fog-rewrite-") as tmp:
        t = Path(tmp)
        (t / "in.wasm").write_bytes(_wasm.strip_custom(wasm))
        for names in (["--generate-names"], ["--no-debug-names", "--generate-names"]):
            _run([tool("wasm2wat"), "--enable-all", *names, str(t / "in.wasm"),
                  "-o", str(t / "in.wat")], "wasm2wat")
            (t / "sp.wat").write_text(instrument((t / "in.wat").read_text()))
            try:
                _run([tool("wat2wasm"), "--enable-all", "--debug-names", str(t / "sp.wat"),
                      "-o", str(t / "sp.wasm")], "wat2wasm")
                break
            except RewriteError:
                if names[0] == "--no-debug-names":
                    raise
                # debug names that the text form cannot carry: retry without them
        unwind = ",".join([".".join(SAFEPOINT), *wasi])
        _run([tool("wasm-opt"), str(t / "sp.wasm"), "-g", "--asyncify",
              f"--pass-arg=asyncify-imports@{unwind}", *FEATURES, *OPT_FLAGS,
              "-o", str(t / "out.wasm")], "wasm-opt --asyncify")
        out = (t / "out.wasm").read_bytes()
    return _wasm.add_global_exports(out, GLOBAL_PREFIX)


@dataclass(frozen=True, slots=True)
class Rewritten:
    """A checkpointable module in the cache: its bytes' path and both digests."""

    path: Path
    digest: str  # sha256 of the rewritten bytes
    original_digest: str  # sha256 of the module it was made from
    original_size: int
    size: int
    from_cache: bool


def _cache_key() -> str:
    text = f"{REWRITE_VERSION}|{tool_versions()}|{' '.join(FEATURES + OPT_FLAGS)}|{DEFAULT_COUNTDOWN}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _rewritten_dir() -> Path:
    from foglayer._dirs import cache_dir

    d = cache_dir("rewritten")
    os.chmod(d, 0o700)  # what runs checkpointable: only this user may put modules there
    return d


def cached_rewritten(digest: str) -> Path | None:
    """The cached checkpointable module whose bytes hash to ``digest``, if any."""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        return None
    path = _rewritten_dir() / f"{digest}.wasm"
    try:
        if hashlib.sha256(path.read_bytes()).hexdigest() == digest:
            return path
    except OSError:
        return None
    path.unlink(missing_ok=True)
    return None


def make_checkpointable(source: str | os.PathLike | bytes, *, progress: bool = True) -> Rewritten:
    """Rewrite a module for checkpoints (or fetch it from the cache)."""
    from foglayer._dirs import atomic_write

    if isinstance(source, bytes | bytearray):
        wasm, where = bytes(source), "<bytes>"
    else:
        where = os.fspath(source)
        try:
            wasm = Path(source).read_bytes()
        except OSError as e:
            raise RewriteError(f"{where}: cannot read: {e.strerror}") from None
    if wasm[:4] != b"\0asm":
        raise RewriteError(f"{where}: not a WebAssembly module (bad magic number)")
    original = hashlib.sha256(wasm).hexdigest()
    try:
        already = SAFEPOINT in {(m, n) for m, n, _ in _wasm.imports(wasm)}
    except RewriteError as e:
        raise RewriteError(f"{where}: {e}") from None
    if already:  # a checkpointable module itself (as a snapshot carries it): use it as is
        path = _rewritten_dir() / f"{original}.wasm"
        if cached_rewritten(original) is None:
            atomic_write(path, wasm)
        return Rewritten(path, original, original, len(wasm), len(wasm), True)
    ref = _rewritten_dir() / f"{original}-{_cache_key()}.ref"
    try:
        digest = ref.read_text().strip()
    except OSError:
        digest = ""
    path = cached_rewritten(digest) if digest else None
    if path is not None:
        return Rewritten(path, digest, original, len(wasm), path.stat().st_size, True)
    try:
        if progress:
            from rich.console import Console

            with Console(stderr=True).status(f"making {os.path.basename(where)} checkpointable "
                                             "(safepoints, asyncify)"):
                out = rewrite_bytes(wasm)
        else:
            out = rewrite_bytes(wasm)
    except RewriteError as e:
        raise RewriteError(f"{where}: {e}") from None
    digest = hashlib.sha256(out).hexdigest()
    path = _rewritten_dir() / f"{digest}.wasm"
    atomic_write(path, out)
    atomic_write(ref, digest.encode())
    return Rewritten(path, digest, original, len(wasm), len(out), False)
