"""Decoding constraints (pure): the grammar built from a content type's schema accepts copy whose
digits are the product's own numbers and refuses any other number, a brace, bracket, tag or '#'
(checked with xgrammar's own matcher, the backend vLLM uses); the banned words for bad_words."""

import json

import pytest
from xgrammar.testing import _is_grammar_accept_string as accepts

from shopgen.core.content import CONTENT_TYPES
from shopgen.core.records import Product
from shopgen.generate.constraints import allowed_numbers, banned_words, copy_grammar

P = Product(sku="S1", title="Kelda Stormline 3L Rain Shell", brand="Kelda",
            attributes={"waterproof_rating_mm": 15000, "weight_g": 390, "layers": 2.5})


def grammar(t):
    return copy_grammar(CONTENT_TYPES[t].json_schema("en-US"), allowed_numbers(P))


def test_allowed_numbers_are_the_inputs_own():
    assert allowed_numbers(P) == ["15,000", "15000", "2.5", "390", "3"]  # longest first


@pytest.mark.parametrize("text", ["A 3-layer shell rated to 15000 mm, 390 g.", "Rated to 15,000 mm.", "Light at 390 g",
                                  "No numbers at all."])
def test_grammar_accepts_the_inputs_numbers(text):
    assert accepts(grammar("description"), json.dumps({"description": text}, separators=(",", ":")))


@pytest.mark.parametrize("text", ["Rated to 20000 mm.", "Weighs 39 g.", "Only 3901 left.", "It weighs 3.5 kg.",
                                  "A {color} shell.", "A [Company Name] shell.", "A <b>bold</b> shell.", "#1 shell",
                                  "Made in 2024."])
def test_grammar_refuses_other_numbers_braces_tags_and_hashes(text):
    assert not accepts(grammar("description"), json.dumps({"description": text}, separators=(",", ":")))


def test_every_type_has_a_grammar_of_its_schema():
    ok = {"bullets": {"bullets": ["Rated to 15000 mm", "Weighs 390 g", "3-layer shell"]},
          "seo_title": {"seo_title": "Kelda Stormline 3L Rain Shell"},
          "ad_copy": {"ad_headlines": ["Kelda Stormline", "Rated 15000 mm", "Just 390 g"],
                      "ad_descriptions": ["A 3-layer rain shell.", "Weighs 390 g."]},
          "faq": {"faq": [{"question": "How much does it weigh?", "answer": "It weighs 390 g."},
                          {"question": "Is it waterproof?", "answer": "It is rated to 15000 mm."}]}}
    for t, out in ok.items():
        assert accepts(grammar(t), json.dumps(out, separators=(",", ":"))), t
    assert not accepts(grammar("bullets"), json.dumps({"bullets": ["Weighs 400 g"]}, separators=(",", ":")))


def test_banned_words_are_the_plain_phrases_of_the_vocabulary():
    words = banned_words()
    assert {"best", "free shipping", "包邮"} <= set(words) and not any("\\" in w for w in words)
    assert banned_words({"custom": [r"\bcheapo\b", r"\d+% off"]}) == ["cheapo"]


def lexicon_grammar(t, p=P, extra=()):
    from shopgen.generate.lexicon import lexicon

    return copy_grammar(CONTENT_TYPES[t].json_schema("en-US"), allowed_numbers(p), lexicon(p, extra))


@pytest.mark.parametrize("text", ["The Kelda Stormline 3L Rain Shell is rated to 15000 mm and weighs 390 g.",
                                  "A 2.5-layer shell, rated to 15,000 mm.", "Kelda rain shell; weighs 390 g!",
                                  "It weighs: 390 g."])
def test_lexicon_grammar_accepts_copy_built_from_the_products_words(text):
    assert accepts(lexicon_grammar("description"), json.dumps({"description": text}, separators=(",", ":")))


@pytest.mark.parametrize("text", ["Made from recycled cedar.",           # a material the input lacks
                                  "A Japanese rain shell.",              # an origin
                                  "Buy it on the Kelda website.",        # a sales channel
                                  "The ultimate rain shell.",            # praise
                                  "A stylish black rain shell.",         # a colour
                                  "Rated to 20000 mm.", "A {color} shell."])
def test_lexicon_grammar_refuses_words_the_input_lacks(text):
    assert not accepts(lexicon_grammar("description"), json.dumps({"description": text}, separators=(",", ":")))


def test_lexicon_takes_the_shops_own_words_and_every_field():
    from shopgen.generate.lexicon import GLUE_EN, lexicon, product_words

    q = Product(sku="S2", title="Oak Desk", attributes={"finish_type": "oiled", "designer": "Ana Lindqvist"},
                description="A full-zip desk? No: a desk.")
    words = product_words(q)
    assert {"Oak", "Desk", "finish", "type", "oiled", "Lindqvist", "full-zip", "full", "zip", "desks"} <= words
    assert "walnut" not in lexicon(q) and "walnut" in lexicon(q, ["walnut"])
    assert "Oak" in lexicon(q) and "oak" in lexicon(q) and "The" in lexicon(q)
    # the glue list names no material, colour, origin or praise
    assert not {"cotton", "steel", "wood", "black", "japanese", "italian", "premium", "perfect", "website"} & set(GLUE_EN)
    assert accepts(lexicon_grammar("bullets", q), json.dumps({"bullets": ["Oak desk with an oiled finish",
                                                                          "Designed by Ana Lindqvist", "A full-zip desk"]},
                                                             separators=(",", ":")))


def test_the_word_constraint_is_for_english_requests_only_and_when_on():
    from shopgen.generate.lexicon import GLUE_EN, request_lexicon

    zh = Product(sku="Z1", title="竹柄菜刀", locale="zh-CN")
    assert request_lexicon(P, False) is None and request_lexicon(zh, True) is None
    assert "Stormline" in request_lexicon(P, True) and "walnut" in request_lexicon(P, True, ["walnut"])
    assert len(GLUE_EN) == len(set(GLUE_EN))
