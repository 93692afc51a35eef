import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shopgen.catalog import load_catalog, normalize, parse_csv, parse_jsonl, read_catalog, validate_rows
from shopgen.config import CatalogLimits, S3Config
from shopgen.records import Product, Quarantined, content_hash

from conftest import SAMPLE

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
