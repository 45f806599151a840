"""Pure helpers of the store's HTTP interface: bodies, compression, statement splitting."""

from __future__ import annotations

import re
import zlib

import lz4.frame
import zstandard

__all__ = ["decompress_body", "split_insert", "status_for_code"]

# INSERT INTO <target> [(<cols>)] FORMAT <name> <newline> <data...>
_INSERT = re.compile(
    rb"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+([A-Za-z0-9_]+)[ \t]*(\r?\n|$)",
    re.IGNORECASE | re.DOTALL,
)


def decompress_body(body: bytes, encoding: str | None) -> bytes:
    """Undo ``Content-Encoding``; every frame / member is decompressed, not just the first.

    >>> import lz4.frame
    >>> decompress_body(lz4.frame.compress(b"ab") + lz4.frame.compress(b"cd"), "lz4")
    b'abcd'
    """
    if not encoding or encoding == "identity" or not body:
        return body
    enc = encoding.strip().lower()
    if enc == "lz4":
        out = []
        rest = body
        while rest:
            dec = lz4.frame.LZ4FrameDecompressor()
            out.append(dec.decompress(rest))
            if not dec.eof:
                msg = "truncated lz4 frame in request body"
                raise ValueError(msg)
            rest = dec.unused_data
        return b"".join(out)
    if enc == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
        return reader.read()
    if enc in ("gzip", "deflate"):
        parts = []
        rest = body
        wbits = 16 + zlib.MAX_WBITS if enc == "gzip" else zlib.MAX_WBITS
        while rest:
            d = zlib.decompressobj(wbits)
            parts.append(d.decompress(rest))
            parts.append(d.flush())
            rest = d.unused_data
        return b"".join(parts)
    msg = f"unsupported Content-Encoding {encoding!r}: use lz4, zstd, gzip or deflate"
    raise ValueError(msg)


def split_insert(sql_and_data: bytes) -> tuple[str, str, memoryview] | None:
    """``(insert statement without FORMAT, format, data)`` for an INSERT with inline data.

    >>> stmt, fmt, data = split_insert(b"INSERT INTO t (a) FORMAT CSV\\n1\\n2\\n")
    >>> stmt, fmt, bytes(data)
    ('INSERT INTO t (a)', 'CSV', b'1\\n2\\n')
    >>> split_insert(b"SELECT 1") is None
    True
    """
    head = sql_and_data[:65536]
    match = _INSERT.match(head)
    if match is None:
        return None
    stmt = match.group(1).decode("utf-8")
    return stmt, match.group(2).decode("ascii"), memoryview(sql_and_data)[match.end() :]


_CODE = re.compile(r"Code: (\d+)")


def error_code(message: str) -> int:
    match = _CODE.search(message)
    return int(match.group(1)) if match else 1000


def status_for_code(code: int) -> int:
    """HTTP status ClickHouse answers for an exception code (500 unless a client error)."""
    if code in (60, 81, 16, 47):  # unknown table / database / column / identifier
        return 404
    if code in (62, 27, 53, 6, 26, 36, 38, 70, 72, 117, 130):  # syntax / parse / type errors
        return 400
    if code in (516, 192, 194, 195):  # authentication
        return 403
    return 500
