"""Catalog input: readers for JSONL, CSV and Parquet (local or s3://), and pure validation into
Products or Quarantined rows. A bad row never stops a run; it is set aside with one reason.
Seller text carrying markup or chat-role tags (`</product>`, `Assistant:`) is flagged, not set aside:
the product stays valid and unchanged, the flag goes to quarantine.jsonl (kind "flag"), and prompts
escape that text (shopgen.generate.prompts)."""

from __future__ import annotations

import csv
import io
import json
import re
import zlib
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from shopgen.adapters.storage import open_input
from shopgen.core.config import CatalogLimits, S3Config
from shopgen.core.records import PRODUCT_FIELDS, Product, Quarantined


@dataclass
class RawRow:
    source: str
    line: int  # 1-based line (JSONL/CSV) or row number (Parquet)
    data: dict[str, Any] | None
    error: str | None = None
    raw: Any = None


def _has_surrogates(v: Any) -> bool:
    return isinstance(v, str) and any("\udc80" <= ch <= "\udcff" for ch in v)


def _safe(v: Any) -> Any:
    """Undecodable bytes kept as \\x escapes, so the quarantine file stays valid UTF-8."""
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(v, dict):
        return {_safe(k): _safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_safe(x) for x in v]
    return v


# Pass-wide bounds: a pass holds one block (JSONL/CSV) or one batch (Parquet) of the file, and
# iter_catalog one chunk of rows; never the file.
BLOCK_SIZE = 1 << 20  # bytes read at a time from a JSONL/CSV stream
CHUNK_ROWS = 5000  # rows a Parquet batch and an iter_catalog chunk hold
# Far above the largest row CatalogLimits lets through (~0.3M chars, 6 bytes a char escaped), so it
# only stops a file that is one huge line (a JSON array saved as .json) from being read whole.
MAX_ROW_BYTES = 16 << 20
_HEAD = 200  # bytes of an oversize row kept for the quarantine


@dataclass
class _Oversize:
    head: bytes
    size: int
    blank: bool


def _stream(src: bytes | BinaryIO) -> BinaryIO:
    return io.BytesIO(src) if isinstance(src, (bytes, bytearray, memoryview)) else src


def _physical_lines(f: BinaryIO, block_size: int, max_bytes: int) -> Iterator[bytes | _Oversize]:
    """The lines bytes.splitlines would give ("\\n", "\\r\\n", "\\r"), one block held at a time. A
    line over max_bytes comes back as an _Oversize and is skipped over, not held."""
    carry, skip, drop_lf = b"", None, False
    while True:
        block = f.read(block_size)
        data = carry + block if carry else block
        if drop_lf and data[:1] == b"\n":  # the "\n" of an oversize line's "\r\n"
            data = data[1:]
        drop_lf = False
        if skip is not None:
            end = _first_end(data)
            if end < 0 and block:
                skip.size += len(data)
                skip.blank = skip.blank and not data.strip()
                carry = b""
                continue
            cut = len(data) if end < 0 else end
            skip.size += cut
            skip.blank = skip.blank and not data[:cut].strip()
            yield skip
            skip = None
            if end < 0:
                return
            drop_lf = data[end:end + 1] == b"\r" and end + 1 == len(data)
            data = data[end + 1 + (data[end:end + 2] == b"\r\n"):]
        if not block:
            yield from data.splitlines()
            return
        end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if end >= 0 and end == len(data) - 1 and data[end] == 13:  # a "\n" may follow in the next block
            end = max(data.rfind(b"\n", 0, end), data.rfind(b"\r", 0, end))
        carry = data[end + 1:]
        if end >= 0:
            yield from data[:end + 1].splitlines()
        if len(carry) > max_bytes + 1 and carry[-1:] == b"\r":  # complete; only its "\n" may follow
            yield _Oversize(carry[:-1][:_HEAD], len(carry) - 1, not carry.strip())
            carry, drop_lf = b"", True
        elif len(carry) > max_bytes and carry[-1:] != b"\r":
            skip, carry = _Oversize(carry[:_HEAD], len(carry), not carry.strip()), b""


def _first_end(data: bytes) -> int:
    n, r = data.find(b"\n"), data.find(b"\r")
    return r if n < 0 else n if r < 0 else min(n, r)


def parse_jsonl(src: bytes | BinaryIO, source: str, *, block_size: int = BLOCK_SIZE,
                max_row_bytes: int = MAX_ROW_BYTES) -> Iterator[RawRow]:
    """Rows of JSONL bytes or of a binary stream, read a block at a time."""
    for n, line in enumerate(_physical_lines(_stream(src), block_size, max_row_bytes), start=1):
        if isinstance(line, _Oversize):
            if not line.blank:
                raw = line.head.decode("utf-8", "backslashreplace") + "..."
                yield RawRow(source, n, None, f"oversize row: {line.size} bytes > {max_row_bytes}", raw)
            continue
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raw = line.decode("utf-8", "backslashreplace")
            yield RawRow(source, n, None, f"invalid UTF-8 at byte {e.start}", raw)
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            yield RawRow(source, n, None, f"invalid JSON: {e.msg} at column {e.colno}", text)
            continue
        if not isinstance(obj, dict):
            yield RawRow(source, n, None, f"row is a JSON {type(obj).__name__}, not an object", obj)
            continue
        yield RawRow(source, n, obj, raw=obj)


def _csv_value(v: str | None) -> Any:
    return None if v is None or v == "" else v


def parse_csv(src: bytes | BinaryIO, source: str) -> Iterator[RawRow]:
    """Rows of CSV bytes or of a binary stream, decoded as read. The csv module, not
    pyarrow.csv.open_csv: it streams as well, and it alone gives each record's line number
    (multi-line quoted cells, blank lines) and keeps short and long rows in their place."""
    text = io.TextIOWrapper(_stream(src), encoding="utf-8", errors="surrogateescape", newline="")
    try:
        yield from _csv_rows(csv.DictReader(text), source)
    finally:
        text.detach()  # the stream is the caller's to close


def _csv_rows(reader: csv.DictReader, source: str) -> Iterator[RawRow]:
    for row in reader:
        n = reader.line_num
        if None in row:  # more cells than header columns
            yield RawRow(source, n, None, "row has more cells than the header", _safe(row))
            continue
        if any(_has_surrogates(k) or _has_surrogates(v) for k, v in row.items()):
            yield RawRow(source, n, None, "invalid UTF-8 bytes", _safe(row))
            continue
        data = {k: _csv_value(v) for k, v in row.items()}
        attrs = data.get("attributes")
        if isinstance(attrs, str):
            try:
                data["attributes"] = json.loads(attrs)
            except json.JSONDecodeError:
                yield RawRow(source, n, None, "attributes is not a JSON object", _safe(row))
                continue
        yield RawRow(source, n, data, raw=row)


def parse_parquet(src: bytes | BinaryIO, source: str, *, batch_rows: int = CHUNK_ROWS) -> Iterator[RawRow]:
    """Rows of Parquet bytes or of a seekable file, converted a batch at a time. A batch is cut
    from one row group, which Arrow reads whole: the writer's row-group size bounds memory too."""
    # pre_buffer would fetch every row group's byte ranges up front: the whole file, held.
    pf = pq.ParquetFile(pa.BufferReader(src) if isinstance(src, (bytes, bytearray, memoryview)) else src,
                        pre_buffer=False)
    i = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        # Strings read as bytes so one undecodable value quarantines one row, not the file.
        cols = {}
        for f, col in zip(batch.schema, batch.columns):
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
                col = col.cast(pa.binary())
            cols[f.name] = col.to_pylist()
        for j in range(batch.num_rows):
            i += 1
            yield _parquet_row(source, i, {name: values[j] for name, values in cols.items()})


def _parquet_row(source: str, n: int, row: dict[str, Any]) -> RawRow:
    data, bad = {}, False
    for name, v in row.items():
        if isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                bad, v = True, v.decode("utf-8", "backslashreplace")
        data[name] = v
    if isinstance(data.get("attributes"), list):  # arrow map<> reads back as key/value pairs
        data["attributes"] = dict(data["attributes"])
    if isinstance(data.get("attributes"), str):
        try:
            data["attributes"] = json.loads(data["attributes"])
        except json.JSONDecodeError:
            pass  # validation reports the wrong type
    if bad:
        return RawRow(source, n, None, "invalid UTF-8 bytes", data)
    return RawRow(source, n, data, raw=data)


READERS = {".jsonl": parse_jsonl, ".ndjson": parse_jsonl, ".json": parse_jsonl, ".csv": parse_csv, ".parquet": parse_parquet}


def read_catalog(uri: str, s3: S3Config | None = None, *, chunk_rows: int = CHUNK_ROWS,
                 block_size: int = BLOCK_SIZE) -> Iterator[RawRow]:
    """The rows of a local or s3:// catalog, streamed: `block_size` bytes (JSONL, CSV) or
    `chunk_rows` rows (Parquet) at a time. A missing file fails here, not at the first row."""
    suffix = "." + str(uri).rsplit(".", 1)[-1].lower() if "." in str(uri) else ""
    if suffix not in READERS:
        raise ValueError(f"unsupported catalog format {suffix or '(none)'!r} for {uri}: use .jsonl, .csv or .parquet")
    parquet = READERS[suffix] is parse_parquet
    f = open_input(uri, s3, seekable=parquet, buffer_size=None if parquet else block_size)
    if parquet:
        rows = parse_parquet(f, str(uri), batch_rows=chunk_rows)
    elif READERS[suffix] is parse_csv:
        rows = parse_csv(f, str(uri))
    else:
        rows = parse_jsonl(f, str(uri), block_size=block_size)
    return _closing(f, rows)


def _closing(f: Any, rows: Iterator[RawRow]) -> Iterator[RawRow]:
    with f:
        yield from rows


# ---- pure validation -------------------------------------------------------------------------

def normalize(data: dict[str, Any]) -> dict[str, Any]:
    """Fold fields outside the canonical record into attributes (CSV/Parquet columns, extra keys)."""
    out = {k: v for k, v in data.items() if k in PRODUCT_FIELDS}
    extra = {k: v for k, v in data.items() if k not in PRODUCT_FIELDS and v is not None}
    if extra and (out.get("attributes") is None or isinstance(out.get("attributes"), dict)):
        out["attributes"] = {**extra, **(out.get("attributes") or {})}
    if out.get("attributes") is None:
        out.pop("attributes", None)
    return out


def _reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(x) for x in e["loc"]) or "row"
        required_empty = e["loc"] and e["loc"][0] in ("sku", "title") and e["type"] in ("string_too_short", "string_type") \
            and (e.get("input") is None or not str(e.get("input")).strip())
        if e["type"] == "missing" or required_empty:
            parts.append(f"missing or empty {field}")
        elif e["type"] == "extra_forbidden":
            parts.append(f"unknown field {field}")
        elif e["type"] == "value_error":  # a Product check: its message names the value itself
            err = (e.get("ctx") or {}).get("error")
            parts.append(f"wrong type or value for {field}: {err if err is not None else e['msg']}")
        else:
            got = e.get("input")
            got_s = repr(got)[:60]
            parts.append(f"wrong type or value for {field}: {e['msg']} (got {got_s})")
    return "; ".join(dict.fromkeys(parts))


def _oversize(p: Product, lim: CatalogLimits) -> str | None:
    caps = {"sku": lim.max_sku_chars, "title": lim.max_title_chars}
    for name in ("sku", "title", "description", "category", "brand"):
        v, cap = getattr(p, name), caps.get(name, lim.max_text_chars)
        if v is not None and len(v) > cap:
            return f"oversize field {name}: {len(v)} chars > {cap}"
    if len(p.attributes) > lim.max_attributes:
        return f"oversize field attributes: {len(p.attributes)} entries > {lim.max_attributes}"
    for k, v in p.attributes.items():
        n = len(k) + len(json.dumps(v, ensure_ascii=False))
        if n > lim.max_attribute_chars:
            return f"oversize attribute {k!r}: {n} chars > {lim.max_attribute_chars}"
    return None


class _FirstLines:
    """sku -> line of its first valid row, for the duplicate check, in 16 bytes a slot (a dict of
    str would hold ~130 bytes a SKU, the one part of a pass that grows with the catalog). A key is
    str's 64-bit hash and a CRC-32 of the text: a false duplicate needs both to collide (~1e-15
    at 10M SKUs)."""

    def __init__(self, slots: int = 1 << 12):
        self._n = 0
        self._alloc(slots)

    def _alloc(self, slots: int) -> None:
        self._mask = slots - 1
        self._hi, self._lo, self._line = array("q", bytes(8 * slots)), array("I", bytes(4 * slots)), \
            array("I", bytes(4 * slots))

    def _put(self, hi: int, lo: int, line: int) -> int:
        """The slot's line if (hi, lo) is there, else 0 once stored (linear probing; 0: a free slot)."""
        his, los, lines, mask = self._hi, self._lo, self._line, self._mask
        i = hi & mask
        while n := lines[i]:
            if his[i] == hi and los[i] == lo:
                return n
            i = (i + 1) & mask
        his[i], los[i], lines[i] = hi, lo, line
        return 0

    def first(self, sku: str, line: int) -> int | None:
        """The line sku was first seen at, or None (and line is recorded as its first)."""
        n = self._put(hash(sku), zlib.crc32(sku.encode("utf-8", "surrogatepass")), min(line, 0xFFFFFFFF))
        if n:
            return n
        self._n += 1
        if self._n * 4 > len(self._line) * 3:
            old = self._hi, self._lo, self._line
            self._alloc(2 * len(self._line))
            for hi, lo, n in zip(*old):
                if n:
                    self._put(hi, lo, n)
        return None


def _wanted(only: Callable[[str], bool] | Collection[str] | None) -> Callable[[str], bool] | None:
    if only is None or callable(only):
        return only
    if isinstance(only, str):
        raise TypeError("only: a collection of SKUs or a predicate, not one string")
    return (only if isinstance(only, (set, frozenset, dict)) else set(only)).__contains__


def _set_aside(r: RawRow, sku: str | None, reason: str) -> Quarantined:
    return Quarantined(stage="validate", reason=reason, sku=sku, source=r.source, line=r.line, raw=_safe(r.raw))


def _checked(rows: Iterable[RawRow], lim: CatalogLimits, want: Callable[[str], bool] | None = None,
             ) -> Iterator[tuple[Product | Quarantined, RawRow]]:
    seen = _FirstLines()
    for r in rows:
        sku = r.data.get("sku") if isinstance(r.data, dict) else None
        sku = sku if isinstance(sku, str) else None
        # Before validation, the costly part; either spelling, as validation strips the sku.
        if want is not None and (sku is None or not (want(sku) or want(sku.strip()))):
            continue

        if r.error:
            yield _set_aside(r, sku, r.error), r
            continue
        try:
            p = Product.model_validate(normalize(r.data or {}))
        except ValidationError as e:
            yield _set_aside(r, sku, _reason(e)), r
            continue
        if want is not None and not want(p.sku):  # Python's strip and pydantic's differ at the edges
            continue
        if (why := _oversize(p, lim)) is not None:
            yield _set_aside(r, sku, why), r
            continue
        if (first := seen.first(p.sku, r.line)) is not None:
            yield _set_aside(r, sku, f"duplicate sku {p.sku!r} (first at line {first})"), r
            continue
        yield p, r


def validate_rows(rows: Iterable[RawRow], limits: CatalogLimits | None = None) -> Iterator[Product | Quarantined]:
    """Yield a Product per good row and a Quarantined per bad one, in input order.
    The first valid row with a given sku wins; later ones are duplicates. (Flags of valid products:
    flag_product; iter_catalog and load_catalog collect them.)"""
    for item, _ in _checked(rows, limits or CatalogLimits()):
        yield item


# ---- untrusted seller text: markup and chat-role tags ----------------------------------------

# Markup a model may read as structure: our own <product> delimiters, HTML/XML tags, chat-template
# special tokens and instruction brackets. `<` must be followed by a tag name (or / ! ?), so
# "< 5 kg" or "<3" are not markup.
MARKUP_RE = re.compile(
    r"<\|[^<>|\n]{0,40}\|>"                          # <|im_start|>, <|endoftext|>
    r"|<</?SYS>>"                                    # Llama 2 system block
    r"|\[/?(?:INST|SYS)\]"                           # [INST] [/INST]
    r"|<\s*/\s*[A-Za-z][\w:.-]{0,40}\s*>"             # </product>, </ script >
    r"|<[A-Za-z][\w:.-]{0,40}(?:\s[^<>]{0,200})?/?>"  # <product>, <script src=x>, <br/>
    r"|<[!?][^<>]{0,200}>"                           # <!-- -->, <!DOCTYPE>, <?xml ?>
    r"|<\s*/\s*[A-Za-z][\w:.-]{0,40}|<product\b",    # unclosed: "</product", "<product"
    re.I)
ROLES = ("assistant", "system", "user", "human", "ai", "助手", "系统", "用户")
# Where a chat turn could begin: the text's or a line's start, or after the end of a sentence,
# a colon, a closing tag/bracket, a quote or a bullet ("- ", "* ", "# ").
_TURN_START = r"""(?:^|(?<=[\n\r.!?;:。！？；：…>\]\)}"'“”‘’|*#•·›])|(?<=\s[-–—]))"""
ROLE_RE = re.compile(rf"{_TURN_START}(?P<ws>\s*)(?P<role>{'|'.join(ROLES)})\s*[:：]", re.I | re.M)


def untrusted_tags(text: str) -> list[str]:
    """The markup and role tags in a piece of seller text, each once, in order (empty: clean)."""
    found = [(m.start(), m.group(0)) for m in MARKUP_RE.finditer(text)]
    found += [(m.start("role"), m.group("role") + m.group(0)[-1]) for m in ROLE_RE.finditer(text)]
    return list(dict.fromkeys(t for _, t in sorted(found)))


def _texts(p: Product) -> Iterator[tuple[str, str, str]]:
    """(field, what, text) for every text that reaches a prompt: title, brand, category,
    description, and each attribute's key and value (list values item by item)."""
    for name in ("title", "brand", "category", "description"):
        if isinstance(v := getattr(p, name), str):
            yield name, "value", v
    for k, v in p.attributes.items():
        yield f"attributes.{k}", "key", k
        for i, x in enumerate(v) if isinstance(v, list) else [(None, v)]:
            if isinstance(x, str):
                yield f"attributes.{k}" + ("" if i is None else f"[{i}]"), "value", x


class Flagged(Quarantined):
    """A field of a valid product that carries markup or role tags. The product is kept as it is
    (indexed, generated for with the text escaped); the flag is written to quarantine.jsonl with
    `kind` "flag", so it is not counted as an invalid row. `raw` is the flagged text."""

    kind: str = "flag"
    field: str


def _show_tags(tags: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(repr(t if len(t) <= 40 else t[:37] + "...") for t in tags[:n])
    return shown + (f" and {len(tags) - n} more" if len(tags) > n else "")


def flag_product(p: Product, source: str | None = None, line: int | None = None) -> list[Flagged]:
    """One Flagged per field of p whose text carries markup or role tags (empty: p is clean)."""
    out = []
    for name, what, text in _texts(p):
        if tags := untrusted_tags(text):
            where = f"{name} ({what})" if name.startswith("attributes.") else name
            reason = (f"untrusted text in {where}: markup or role tags {_show_tags(tags)}; "
                      "product kept, the text is escaped in prompts")
            out.append(Flagged(stage="validate", reason=reason, sku=p.sku, source=source, line=line, raw=text,
                               field=name))
    return out


class SetAside(list):
    """What validation set aside: the invalid rows (a list of Quarantined; its len() is the invalid
    count), and in `flags` the Flagged fields of valid products. append_quarantine writes both."""

    def __init__(self, rows: Iterable[Quarantined] = (), flags: Iterable[Flagged] = ()):
        super().__init__(rows)
        self.flags: list[Flagged] = list(flags)


def iter_catalog(uri: str, limits: CatalogLimits | None = None, s3: S3Config | None = None,
                 limit: int | None = None, chunk: int = CHUNK_ROWS, *,
                 only: Callable[[str], bool] | Collection[str] | None = None,
                 block_size: int = BLOCK_SIZE) -> Iterator[tuple[list[Product], SetAside]]:
    """Read and validate in chunks of about `chunk` rows, streaming the file (read_catalog), so a
    pass holds one chunk, not the catalog. `limit` caps the number of valid products taken (for
    demos and smoke runs). The second list holds the invalid rows; its `flags` the flagged fields
    of the products taken. `only` (SKUs, or a predicate on a SKU) keeps just those rows: the others,
    rows without a readable SKU included, are dropped unvalidated and unrecorded (a second pass)."""
    good: list[Product] = []
    bad = SetAside()
    taken = 0
    rows = read_catalog(uri, s3, chunk_rows=chunk, block_size=block_size)
    for item, r in _checked(rows, limits or CatalogLimits(), _wanted(only)):
        if isinstance(item, Product):
            if limit is None or taken < limit:
                good.append(item)
                bad.flags.extend(flag_product(item, r.source, r.line))
                taken += 1
        else:
            bad.append(item)
        if len(good) + len(bad) >= chunk:
            yield good, bad
            good, bad = [], SetAside()
    if good or bad or bad.flags:
        yield good, bad


def load_catalog(uri: str, limits: CatalogLimits | None = None, s3: S3Config | None = None,
                 limit: int | None = None) -> tuple[list[Product], SetAside]:
    """The whole catalog: its valid products and its bad rows, with the flags (see iter_catalog)."""
    good: list[Product] = []
    bad = SetAside()
    for g, b in iter_catalog(uri, limits, s3, limit):
        good.extend(g)
        bad.extend(b)
        bad.flags.extend(b.flags)
    return good, bad
