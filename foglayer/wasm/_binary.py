"""Just enough of the Wasm binary format: sections, imports, memories, globals, exports, and
adding exports. Bytes from a file or another node are untrusted: every read is bounds-checked
and a bad module is a :class:`WasmFormatError` (one line), never an ``IndexError``."""

from __future__ import annotations

from foglayer.errors import FogError

MAGIC = b"\0asm\x01\0\0\0"
SEC_CUSTOM, SEC_IMPORT, SEC_MEMORY, SEC_GLOBAL, SEC_EXPORT = 0, 2, 5, 6, 7
# Where a new export section goes: after these known section ids.
_BEFORE_EXPORT = {1, 2, 3, 4, 5, 6, 13}
KIND_FUNC, KIND_TABLE, KIND_MEMORY, KIND_GLOBAL, KIND_TAG = 0, 1, 2, 3, 4
PAGE = 65536


class WasmFormatError(FogError):
    """The bytes are not a well-formed WebAssembly module (what is wrong, in one line)."""


def _byte(buf: bytes, pos: int) -> int:
    if pos >= len(buf):
        raise WasmFormatError("truncated module (a field runs past the end)")
    return buf[pos]


def leb_u(buf: bytes, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 at ``pos``: (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise WasmFormatError("truncated module (LEB128 past the end)")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WasmFormatError("malformed module (LEB128 longer than 64 bits)")


def enc_u(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _name(buf: bytes, pos: int) -> tuple[str, int]:
    n, pos = leb_u(buf, pos)
    if pos + n > len(buf):
        raise WasmFormatError("truncated module (a name runs past the end)")
    return buf[pos:pos + n].decode("utf-8", "replace"), pos + n


def sections(wasm: bytes) -> list[tuple[int, int, int]]:
    """``(id, payload_start, payload_end)`` of every section, in order."""
    if wasm[:8] != MAGIC:
        raise WasmFormatError("not a WebAssembly module (bad magic number or version)")
    out, pos = [], 8
    while pos < len(wasm):
        sid = wasm[pos]
        size, start = leb_u(wasm, pos + 1)
        if start + size > len(wasm):
            raise WasmFormatError("truncated module (a section runs past the end)")
        out.append((sid, start, start + size))
        pos = start + size
    return out


def custom_name(wasm: bytes, start: int) -> str:
    return _name(wasm, start)[0]


def _limits(buf: bytes, pos: int) -> tuple[int, int]:
    """A limits field: (minimum, position after it)."""
    flags = _byte(buf, pos)
    lo, pos = leb_u(buf, pos + 1)
    if flags & 1:
        _, pos = leb_u(buf, pos)
    return lo, pos


def _imports(wasm: bytes, secs: list[tuple[int, int, int]]) -> list[tuple[str, str, int, int]]:
    """``(module, name, kind, memory minimum in pages or 0)`` of every import."""
    out: list[tuple[str, str, int, int]] = []
    for sid, start, end in secs:
        if sid != SEC_IMPORT:
            continue
        count, pos = leb_u(wasm, start)
        for _ in range(count):
            if pos >= end:
                raise WasmFormatError("malformed module (more imports than the section holds)")
            mod, pos = _name(wasm, pos)
            name, pos = _name(wasm, pos)
            kind = _byte(wasm, pos)
            pos += 1
            pages = 0
            if kind == KIND_FUNC:
                _, pos = leb_u(wasm, pos)
            elif kind == KIND_TABLE:
                _, pos = _limits(wasm, pos + 1)
            elif kind == KIND_MEMORY:
                pages, pos = _limits(wasm, pos)
            elif kind == KIND_GLOBAL:
                pos += 2
            elif kind == KIND_TAG:
                _, pos = leb_u(wasm, pos + 1)
            else:
                raise WasmFormatError(f"unknown import kind {kind}")
            out.append((mod, name, kind, pages))
    return out


def imports(wasm: bytes) -> list[tuple[str, str, int]]:
    """``(module, name, kind)`` of every import."""
    return [(m, n, k) for m, n, k, _ in _imports(wasm, sections(wasm))]


def initial_memory(wasm: bytes) -> int:
    """The bytes of linear memory the module starts with (the largest memory minimum)."""
    secs = sections(wasm)
    pages = max((p for *_, p in _imports(wasm, secs)), default=0)
    for sid, start, _end in secs:
        if sid == SEC_MEMORY:
            count, pos = leb_u(wasm, start)
            for _ in range(count):
                lo, pos = _limits(wasm, pos)
                pages = max(pages, lo)
    return pages * PAGE


def global_count(wasm: bytes) -> int:
    """Imported plus defined globals."""
    secs = sections(wasm)
    n = sum(1 for *_, kind, _p in _imports(wasm, secs) if kind == KIND_GLOBAL)
    for sid, start, _end in secs:
        if sid == SEC_GLOBAL:
            n += leb_u(wasm, start)[0]
    return n


def export_names(wasm: bytes) -> list[str]:
    for sid, start, end in sections(wasm):
        if sid == SEC_EXPORT:
            count, pos = leb_u(wasm, start)
            names = []
            for _ in range(count):
                if pos >= end:
                    raise WasmFormatError("malformed module (more exports than the section holds)")
                name, pos = _name(wasm, pos)
                _, pos = leb_u(wasm, pos + 1)
                names.append(name)
            return names
    return []


def _section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + enc_u(len(payload)) + payload


def add_global_exports(wasm: bytes, prefix: str = "fog_global_") -> bytes:
    """Export every global as ``{prefix}{index}`` (those not exported under that name yet)."""
    n = global_count(wasm)
    have = set(export_names(wasm))
    new = [i for i in range(n) if f"{prefix}{i}" not in have]
    if not new:
        return wasm
    entries = b"".join(enc_u(len(f"{prefix}{i}")) + f"{prefix}{i}".encode()
                       + bytes([KIND_GLOBAL]) + enc_u(i) for i in new)
    secs = sections(wasm)
    out = bytearray(wasm[:8])
    done = False
    for k, (sid, start, end) in enumerate(secs):
        if sid == SEC_EXPORT:
            count, pos = leb_u(wasm, start)
            out += _section(SEC_EXPORT, enc_u(count + len(new)) + wasm[pos:end] + entries)
            done = True
            continue
        if not done and sid not in _BEFORE_EXPORT and sid != SEC_CUSTOM:
            out += _section(SEC_EXPORT, enc_u(len(new)) + entries)
            done = True
        head = wasm[secs[k - 1][2] if k else 8:start]  # id byte + size of this section
        out += head + wasm[start:end]
    if not done:
        out += _section(SEC_EXPORT, enc_u(len(new)) + entries)
    return bytes(out)


def strip_custom(wasm: bytes, keep: tuple[str, ...] = ("name",)) -> bytes:
    """Drop custom sections (DWARF ``.debug_*`` and the like) except those in ``keep``."""
    secs = sections(wasm)
    out = bytearray(wasm[:8])
    prev = 8
    for sid, start, end in secs:
        if sid != SEC_CUSTOM or custom_name(wasm, start) in keep:
            out += wasm[prev:end]
        prev = end
    return bytes(out)
