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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from shopgen.adapters.storage import read_bytes
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


def parse_jsonl(blob: bytes, source: str) -> Iterator[RawRow]:
    for n, line in enumerate(blob.splitlines(), start=1):
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


def parse_csv(blob: bytes, source: str) -> Iterator[RawRow]:
    text = blob.decode("utf-8", "surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""))
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


def parse_parquet(blob: bytes, source: str) -> Iterator[RawRow]:
    table = pq.read_table(pa.BufferReader(blob))
    # Read strings as bytes so one undecodable value quarantines one row, not the file.
    cols = {}
    for f in table.schema:
        col = table[f.name]
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            col = col.cast(pa.binary())
        cols[f.name] = col.to_pylist()
    for i in range(table.num_rows):
        data, bad = {}, False
        for name, values in cols.items():
            v = values[i]
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
            yield RawRow(source, i + 1, None, "invalid UTF-8 bytes", data)
        else:
            yield RawRow(source, i + 1, data, raw=data)


READERS = {".jsonl": parse_jsonl, ".ndjson": parse_jsonl, ".json": parse_jsonl, ".csv": parse_csv, ".parquet": parse_parquet}


def read_catalog(uri: str, s3: S3Config | None = None) -> Iterator[RawRow]:
    suffix = "." + str(uri).rsplit(".", 1)[-1].lower() if "." in str(uri) else ""
    if suffix not in READERS:
        raise ValueError(f"unsupported catalog format {suffix or '(none)'!r} for {uri}: use .jsonl, .csv or .parquet")
    return READERS[suffix](read_bytes(uri, s3), str(uri))


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


def _checked(rows: Iterable[RawRow], lim: CatalogLimits) -> Iterator[tuple[Product | Quarantined, RawRow]]:
    seen: dict[str, int] = {}
    for r in rows:
        sku = r.data.get("sku") if isinstance(r.data, dict) else None
        sku = sku if isinstance(sku, str) else None

        def bad(reason: str) -> Quarantined:
            return Quarantined(stage="validate", reason=reason, sku=sku, source=r.source, line=r.line, raw=_safe(r.raw))

        if r.error:
            yield bad(r.error), r
            continue
        try:
            p = Product.model_validate(normalize(r.data or {}))
        except ValidationError as e:
            yield bad(_reason(e)), r
            continue
        if (why := _oversize(p, lim)) is not None:
            yield bad(why), r
            continue
        if p.sku in seen:
            yield bad(f"duplicate sku {p.sku!r} (first at line {seen[p.sku]})"), r
            continue
        seen[p.sku] = r.line
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
                 limit: int | None = None, chunk: int = 5000) -> Iterator[tuple[list[Product], SetAside]]:
    """Read and validate in chunks of about `chunk` rows, so a caller need not hold the catalog
    whole. `limit` caps the number of valid products taken (for demos and smoke runs). The second
    list holds the invalid rows; its `flags` the flagged fields of the products taken."""
    good: list[Product] = []
    bad = SetAside()
    taken = 0
    for item, r in _checked(read_catalog(uri, s3), limits or CatalogLimits()):
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
