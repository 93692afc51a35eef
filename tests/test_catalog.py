import json
import random
import string
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE

from shopgen.catalog.load import load_catalog, normalize, parse_csv, parse_jsonl, read_catalog, validate_rows
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
