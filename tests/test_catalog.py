import io
import json
import random
import string
import tracemalloc
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE

from shopgen.catalog.load import (
    iter_catalog,
    load_catalog,
    normalize,
    parse_csv,
    parse_jsonl,
    parse_parquet,
    read_catalog,
    validate_rows,
)
from shopgen.core.config import CatalogLimits, S3Config
from shopgen.core.records import Product, Quarantined, content_hash, parse_updated_at

GOOD = {"sku": "A1", "title": "Cork Yoga Mat", "category": "Yoga Mats", "brand": "Kelda",
        "attributes": {"material": "cork", "thickness_mm": 4}, "price": 49.5, "currency": "USD"}


def _validate(lines: list[bytes], **lim):
    out = list(validate_rows(parse_jsonl(b"\n".join(lines), "t.jsonl"), CatalogLimits(**lim)))
    return [x for x in out if isinstance(x, Product)], [x for x in out if isinstance(x, Quarantined)]


def test_good_row_defaults_locale_and_keeps_attributes():
    good, bad = _validate([json.dumps(GOOD).encode()])
    assert not bad and good[0].locale == "en-US" and good[0].attributes["material"] == "cork"


@pytest.mark.parametrize("row,reason", [
    ({"title": "x"}, "missing or empty sku"),
    ({"sku": "  ", "title": "x"}, "missing or empty sku"),
    ({"sku": "B", "title": ""}, "missing or empty title"),
    ({"sku": "B", "title": 5}, "wrong type or value for title"),
    ({"sku": "B", "title": "x", "price": "cheap"}, "wrong type or value for price"),
    ({"sku": "B", "title": "x", "attributes": ["a"]}, "wrong type or value for attributes"),
    ({"sku": "B", "title": "x", "attributes": {"a": {"nested": 1}}}, "wrong type or value for attributes"),
    ({"sku": "B", "title": "x" * 600}, "oversize field title"),
    ({"sku": "B", "title": "x", "description": "y" * 30_000}, "oversize field description"),
])
def test_invalid_rows_are_quarantined_with_one_reason(row, reason):
    good, bad = _validate([json.dumps(GOOD).encode(), json.dumps(row).encode()])
    assert [p.sku for p in good] == ["A1"]
    assert len(bad) == 1 and bad[0].reason.startswith(reason), bad[0].reason
    assert bad[0].line == 2 and bad[0].stage == "validate" and bad[0].raw is not None


def test_bad_bytes_json_and_duplicates():
    lines = [json.dumps(GOOD).encode(), b'{"sku": "C", "title": "caf\xe9"}', b"{not json", b"[1, 2]",
             json.dumps({**GOOD, "title": "again"}).encode()]
    good, bad = _validate(lines)
    assert len(good) == 1
    reasons = [q.reason for q in bad]
    assert reasons[0].startswith("invalid UTF-8")
    assert reasons[1].startswith("invalid JSON")
    assert "not an object" in reasons[2]
    assert reasons[3] == "duplicate sku 'A1' (first at line 1)"
    json.dumps([q.model_dump() for q in bad])  # the quarantine stays serialisable (bytes escaped)


def test_extra_fields_fold_into_attributes():
    assert normalize({"sku": "a", "title": "t", "color": "teal", "attributes": {"size": "M"}})["attributes"] == {
        "color": "teal", "size": "M"}


def test_csv_reader_types_and_bad_bytes():
    blob = ('sku,title,price,attributes,color\n'
            'A1,Cork Mat,19.5,"{""material"": ""cork""}",teal\n'
            'A2,,3,,\n').encode() + b'A3,caf\xe9,1,,\n'
    out = list(validate_rows(parse_csv(blob, "c.csv")))
    assert isinstance(out[0], Product) and out[0].price == 19.5
    assert out[0].attributes == {"material": "cork", "color": "teal"}
    assert out[1].reason == "missing or empty title"
    assert out[2].reason == "invalid UTF-8 bytes"


def test_parquet_reader(tmp_path):
    t = pa.table({"sku": ["P1", "P2"], "title": ["Lamp", None], "price": [10.0, 2.0],
                  "attributes": ['{"wattage": 8}', None]})
    pq.write_table(t, tmp_path / "c.parquet")
    good, bad = load_catalog(str(tmp_path / "c.parquet"))
    assert good[0].attributes == {"wattage": 8}
    assert bad[0].sku == "P2" and "title" in bad[0].reason


def test_unknown_format_is_a_clear_error(tmp_path):
    (tmp_path / "c.xml").write_text("<x/>")
    with pytest.raises(ValueError, match="unsupported catalog format"):
        read_catalog(str(tmp_path / "c.xml"))


def test_content_hash_ignores_updated_at_only():
    a = Product(**GOOD, updated_at="2026-01-01")
    assert content_hash(a) == content_hash(Product(**GOOD, updated_at="2026-02-02"))
    assert content_hash(a) != content_hash(Product(**{**GOOD, "price": 50}))


def test_sample_catalog_shape():
    good, bad = load_catalog(str(SAMPLE))
    assert not bad and len(good) >= 300
    assert len({p.category for p in good}) >= 8
    with_desc = sum(1 for p in good if p.description)
    assert 0.4 <= with_desc / len(good) <= 0.6


def test_catalog_from_s3(s3_server):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="shop")
    body = json.dumps(GOOD) + "\n" + json.dumps({"sku": "", "title": "x"}) + "\n"
    s3.put_object(Bucket="shop", Key="in/catalog.jsonl", Body=body.encode())
    good, bad = load_catalog("s3://shop/in/catalog.jsonl", s3=S3Config(endpoint_url=s3_server, region="us-east-1"))
    assert [p.sku for p in good] == ["A1"] and bad[0].reason == "missing or empty sku"


# ---- updated_at and locale -------------------------------------------------------------------

GOOD_UPDATED_AT = ["2026-11-30", "2026-11-30T10:00:00Z", "2026-11-30T10:00:00+08:00", "2026-11-30 10:00:00",
                   "2026-11-30T10:00:00.123Z", "2026-11-30T10:00:00.123456789+00:00", "2026-11-30T10:00"]
BAD_UPDATED_AT = ["yesterday", "2026-13-45T99:99:99Z", "2026-02-30", "2026-11-30T25:00:00Z", "30/11/2026",
                  "Nov 30 2026", "2026", "10:00:00", "now", "2026-11-30T10:00:00+25:00"]
GOOD_LOCALES = ["en", "de", "en-US", "zh-CN", "pt-BR", "zh-Hans-CN", "sr-Latn-RS", "es-419", "de-CH-1996", "en-us"]
BAD_LOCALES = ["english", "en--US", "12-34", "e", "en-", "-US", "en US", "en-USA-", "zh-Hans-CN-", "x" * 160,
               "xx-" + "123456789-" * 16, "en-US" + "-abcdefgh" * 4]


@pytest.mark.parametrize("ts", GOOD_UPDATED_AT)
def test_iso_updated_at_is_accepted_as_given(ts):
    from indexing.lifecycle import epoch_ms

    p = Product(sku="A", title="t", updated_at=ts)
    assert p.updated_at == ts
    # Everything accepted gives a real external version, not the run-epoch fallback.
    assert epoch_ms(p.updated_at, -1) == int(parse_updated_at(ts).timestamp() * 1000) > 0


@pytest.mark.parametrize("ts", BAD_UPDATED_AT + [1732960000, 1.5, True, ["2026-11-30"]])
def test_bad_updated_at_is_quarantined_with_reason(ts):
    good, bad = _validate([json.dumps({**GOOD, "sku": "B", "updated_at": ts}).encode()])
    assert not good and len(bad) == 1
    assert bad[0].reason == (f"wrong type or value for updated_at: {ts!r} is not an ISO 8601 date or datetime "
                             "(e.g. 2026-11-30 or 2026-11-30T10:00:00Z)"), bad[0].reason


def test_updated_at_blank_is_none_and_dates_become_iso():
    assert Product(sku="A", title="t", updated_at="  ").updated_at is None
    assert Product(sku="A", title="t", updated_at=" 2026-11-30 ").updated_at == "2026-11-30"
    assert Product(sku="A", title="t", updated_at=date(2026, 11, 30)).updated_at == "2026-11-30"
    dt = datetime(2026, 11, 30, 10, tzinfo=timezone.utc)
    assert Product(sku="A", title="t", updated_at=dt).updated_at == "2026-11-30T10:00:00+00:00"


@pytest.mark.parametrize("loc", GOOD_LOCALES)
def test_well_formed_locales_are_kept(loc):
    assert Product(sku="A", title="t", locale=loc).locale == loc


@pytest.mark.parametrize("loc,want", [("zh_CN", "zh-CN"), ("en_US", "en-US"), (" pt_BR ", "pt-BR"),
                                      (None, "en-US"), ("", "en-US"), ("  ", "en-US")])
def test_underscore_locales_normalise_and_empty_defaults(loc, want):
    assert Product(sku="A", title="t", locale=loc).locale == want


@pytest.mark.parametrize("loc", BAD_LOCALES + [5, ["en"]])
def test_bad_locale_is_quarantined_with_reason(loc):
    good, bad = _validate([json.dumps({**GOOD, "sku": "B", "locale": loc}).encode()])
    assert not good and len(bad) == 1
    why = bad[0].reason
    assert why.startswith("wrong type or value for locale: ") and why.endswith(
        " is not a well-formed language tag (e.g. en-US, zh-CN)"), why
    assert len(why) < 160  # a long value is cut, not copied whole
    if isinstance(loc, str) and len(loc) > 40:
        assert f"({len(loc)} chars)" in why


def test_parquet_timestamps_and_underscore_locale(tmp_path):
    t = pa.table({"sku": ["P1", "P2"], "title": ["Lamp", "Desk"], "locale": ["zh_CN", "english"],
                  "updated_at": pa.array([datetime(2026, 11, 30, 10, tzinfo=timezone.utc), None],
                                         pa.timestamp("us", tz="UTC"))})
    pq.write_table(t, tmp_path / "c.parquet")
    good, bad = load_catalog(str(tmp_path / "c.parquet"))
    assert [(p.sku, p.locale, p.updated_at) for p in good] == [("P1", "zh-CN", "2026-11-30T10:00:00+00:00")]
    assert bad[0].sku == "P2" and bad[0].reason.startswith("wrong type or value for locale: 'english'")


def _rand_letters(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(lo, hi)))


def test_fuzzed_catalog_quarantines_bad_timestamps_and_locales(tmp_path):
    """1,000 rows, valid and corrupted: nothing crashes, every bad updated_at/locale is set aside
    with a reason naming the field, every valid row is kept, and the counts add up."""
    rng = random.Random(0)
    other = {  # the corruptions the validator already handled
        "missing sku": lambda r: r.pop("sku"),
        "empty title": lambda r: r.update(title="  "),
        "missing title": lambda r: r.pop("title"),
        "negative price": lambda r: r.update(price=-rng.uniform(0.01, 100)),
        "price text": lambda r: r.update(price="cheap"),
        "attributes list": lambda r: r.update(attributes=["a", "b"]),
        "nested attribute": lambda r: r.update(attributes={"a": {"b": 1}}),
        "title type": lambda r: r.update(title=rng.randint(0, 99)),
        "oversize title": lambda r: r.update(title="x" * 600),
    }
    lines, expect = [], []  # expect: None (valid) or the fields its reason must name
    for i in range(1000):
        row = {**GOOD, "sku": f"F{i}", "title": f"Item {i}",
               "updated_at": rng.choice(GOOD_UPDATED_AT + [None, ""]),
               "locale": rng.choice(GOOD_LOCALES + ["zh_CN", "en_US", None, ""])}
        roll, fields = rng.random(), set()
        if roll < 0.03:
            lines.append(rng.choice([b"{not json", b"[1, 2]", b'{"sku": "X", "title": "caf\xe9"}']))
            expect.append(set())
            continue
        if roll < 0.50:
            if rng.random() < 0.6:
                row["updated_at"] = rng.choice(BAD_UPDATED_AT + [_rand_letters(rng, 1, 30)])
                fields.add("updated_at")
            if not fields or rng.random() < 0.4:
                row["locale"] = rng.choice(BAD_LOCALES + [_rand_letters(rng, 9, 200)])
                fields.add("locale")
        if (roll < 0.50 and rng.random() < 0.3) or 0.50 <= roll < 0.62:
            name = rng.choice(sorted(other))
            other[name](row)
            fields.add(name)
        lines.append(json.dumps(row).encode())
        expect.append(fields or None)
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    good, bad = load_catalog(str(path))
    assert len(good) + len(bad) == len(lines) == 1000
    by_line = {q.line: q for q in bad}
    assert len(by_line) == len(bad)
    assert sorted(int(p.sku[1:]) + 1 for p in good) == [n for n, e in enumerate(expect, 1) if e is None]
    n_ts = n_loc = 0
    for n, fields in enumerate(expect, 1):
        if fields is None:
            continue
        q = by_line[n]
        assert q.stage == "validate" and q.reason and q.raw is not None
        if "updated_at" in fields:
            n_ts += 1
            assert "wrong type or value for updated_at: " in q.reason, q.reason
            assert "is not an ISO 8601 date or datetime" in q.reason
        if "locale" in fields:
            n_loc += 1
            assert "wrong type or value for locale: " in q.reason, q.reason
            assert "is not a well-formed language tag" in q.reason
    assert n_ts > 100 and n_loc > 100 and len(good) > 300  # the mix really exercised each case
    json.dumps([q.model_dump() for q in bad])  # the quarantine stays serialisable


# ---- streaming readers -------------------------------------------------------------------------

class _Counting(io.BytesIO):
    """A binary stream that remembers how far it was read."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.high = 0

    def read(self, n=-1):
        out = super().read(n)
        self.high = max(self.high, self.tell())
        return out

    def read1(self, n=-1):
        out = super().read1(n)
        self.high = max(self.high, self.tell())
        return out


def _big_rows(n: int) -> list[dict]:
    return [{**GOOD, "sku": f"M{i}", "title": f"Item {i}", "description": f"{i:05d} " * 800} for i in range(n)]


def test_jsonl_and_csv_readers_yield_rows_before_the_end_of_the_stream():
    blob = "".join(json.dumps(r) + "\n" for r in _big_rows(100)).encode()
    f = _Counting(blob)
    first = next(parse_jsonl(f, "s.jsonl", block_size=4096))
    assert first.data["sku"] == "M0" and f.high <= 2 * 4096 < len(blob) / 40  # a row is ~4 KB
    csv_blob = ("sku,title,description\n" + "".join(f"C{i},Item {i},{'d' * 4000}\n" for i in range(100))).encode()
    f = _Counting(csv_blob)
    assert next(parse_csv(f, "s.csv")).data["sku"] == "C0" and f.high < len(csv_blob) / 4


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64])
def test_line_numbers_across_block_boundaries_match_the_whole_file(block):
    """Lines end as bytes.splitlines ends them ("\\n", "\\r\\n", "\\r"), wherever a block boundary falls."""
    rng = random.Random(block)
    row = json.dumps({"sku": "A", "title": "t"}).encode()
    blob = b"".join(rng.choice([row, b"{bad", b"  ", b""]) + rng.choice([b"\n", b"\r\n", b"\r"]) for _ in range(300))
    want = [(n, ln) for n, ln in enumerate(blob.splitlines(), 1) if ln.strip()]
    got = list(parse_jsonl(io.BytesIO(blob), "s", block_size=block))
    assert [(r.line, r.raw if r.error else json.dumps(r.raw).encode()) for r in got] == [
        (n, ln.decode() if ln != row else ln) for n, ln in want]


def test_a_line_over_the_row_cap_is_set_aside_without_being_held():
    huge = b'{"sku": "H", "title": "' + b"x" * 100_000 + b'"}'
    blob = json.dumps(GOOD).encode() + b"\r\n" + huge + b"\r\n" + json.dumps({**GOOD, "sku": "A2"}).encode() + b"\n"
    tracemalloc.start()
    try:
        out = list(parse_jsonl(io.BytesIO(blob), "s", block_size=1024, max_row_bytes=4096))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30_000  # skipped over: the 100 KB line was never held
    assert [(r.line, r.error) for r in out] == [(1, None), (2, f"oversize row: {len(huge)} bytes > 4096"), (3, None)]
    assert out[1].raw.startswith('{"sku": "H"') and len(out[1].raw) <= 203


def _pass_peak(path, chunk: int) -> int:
    """Peak Python allocations during one whole iter_catalog pass."""
    tracemalloc.start()
    try:
        n = sum(len(g) for g, _ in iter_catalog(str(path), chunk=chunk, block_size=1 << 16))
        return n and tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_pass_holds_one_chunk_not_the_file(tmp_path):
    """The peak follows the chunk, not the file: six times the rows, the same peak; ten times
    the chunk, a larger one."""
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    small.write_text("".join(json.dumps(r) + "\n" for r in _big_rows(500)))
    big.write_text("".join(json.dumps(r) + "\n" for r in _big_rows(3000)))
    p_small, p_big, p_big_chunk = _pass_peak(small, 50), _pass_peak(big, 50), _pass_peak(big, 500)
    size = big.stat().st_size
    assert p_big < 1.3 * p_small and p_big < size / 10, (p_small, p_big, size)
    assert p_big_chunk > 3 * p_big, (p_big, p_big_chunk)


def test_parquet_is_read_a_batch_at_a_time(tmp_path):
    rows = _big_rows(2000)
    pq.write_table(pa.Table.from_pylist([{**r, "attributes": json.dumps(r["attributes"])} for r in rows]),
                   tmp_path / "big.parquet", row_group_size=100, compression="none", use_dictionary=False)
    size = (tmp_path / "big.parquet").stat().st_size
    base, arrow_peak, n = pa.total_allocated_bytes(), 0, 0
    tracemalloc.start()
    try:
        with pa.OSFile(str(tmp_path / "big.parquet")) as f:
            for r in parse_parquet(f, "p", batch_rows=20):
                arrow_peak = max(arrow_peak, pa.total_allocated_bytes() - base)
                n += r.data["sku"] == f"M{n}"
        py_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 2000
    assert arrow_peak < size / 8 and py_peak < size / 8, (arrow_peak, py_peak, size)


def test_only_skips_unwanted_rows_before_validation(tmp_path, monkeypatch):
    from shopgen.catalog import load

    rows = [GOOD, {**GOOD, "sku": " B2 "}, {**GOOD, "sku": "C3", "title": ""}, {"sku": "D4", "title": ""},
            {**GOOD, "title": "again"}]
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"\n".join([json.dumps(r).encode() for r in rows] + [b"{not json", b"\xff"]) + b"\n")
    validated = []
    real = load.normalize
    monkeypatch.setattr(load, "normalize", lambda d: validated.append(d.get("sku")) or real(d))

    def run(only):
        validated.clear()
        out = [([p.sku for p in g], [(q.sku, q.line, q.reason) for q in b])
               for g, b in iter_catalog(str(path), only=only)]
        return [p for g, _ in out for p in g], [q for _, b in out for q in b]

    good, bad = run({"A1", "B2", "C3"})
    assert good == ["A1", "B2"] and validated == ["A1", " B2 ", "C3", "A1"]
    assert bad == [("C3", 3, "missing or empty title"), ("A1", 5, "duplicate sku 'A1' (first at line 1)")]
    good, bad = run(lambda sku: sku.startswith("B"))
    assert good == ["B2"] and bad == [] and validated == [" B2 "]
    good, bad = run(None)  # everything, bad bytes and bad JSON included
    assert good == ["A1", "B2"] and len(bad) == 5
    with pytest.raises(TypeError):
        run("A1")


def test_missing_file_fails_when_read_catalog_is_called(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_catalog(str(tmp_path / "nope.jsonl"))


def test_csv_and_parquet_stream_from_s3(s3_server, tmp_path):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="shop2")
    s3.put_object(Bucket="shop2", Key="c.csv", Body=b"sku,title\nA1,Mat\nA2,\n")
    buf = io.BytesIO()
    pq.write_table(pa.table({"sku": ["P1", "P2", "P3"], "title": ["Lamp", None, "Desk"]}), buf, row_group_size=1)
    s3.put_object(Bucket="shop2", Key="c.parquet", Body=buf.getvalue())
    cfg = S3Config(endpoint_url=s3_server, region="us-east-1")
    good, bad = load_catalog("s3://shop2/c.csv", s3=cfg)
    assert [p.sku for p in good] == ["A1"] and (bad[0].sku, bad[0].line) == ("A2", 3)
    chunks = list(iter_catalog("s3://shop2/c.parquet", s3=cfg, chunk=1))
    assert [p.sku for g, _ in chunks for p in g] == ["P1", "P3"] and len(chunks) == 3
