"""Best-of-n (pure, with a fake engine): every candidate of a request is gated; an accepted one is
published over a rejected one, and among accepted ones the higher candidate_score wins."""

import json

from shopgen.core.content import CONTENT_TYPES
from shopgen.core.records import Product
from shopgen.generate.engine import (
    PromptSpec,
    Sample,
    candidate_score,
    evaluate,
    generate_with_retries,
    length_fit,
    pick,
)

DESC = CONTENT_TYPES["description"]
P = Product(sku="B1", title="Kelda Trail Bottle", brand="Kelda", category="Water Bottles",
            attributes={"capacity_ml": 750, "material": "stainless steel", "insulated": True, "color": "olive"})
REJECTED = json.dumps({"description": "The best bottle in the world, guaranteed to keep you happy on every hike "
                                      "and every single day of the year."})
THIN = json.dumps({"description": "The Kelda Trail Bottle is a water bottle from Kelda. It comes in olive and "
                                  "is easy to carry on a walk."})
RICH = json.dumps({"description": "The Kelda Trail Bottle holds 750 ml and is made of stainless steel. It is "
                                  "insulated, so drinks stay cool on a long walk, and it comes in olive."})


def test_scores_prefer_more_facts_and_fluency():
    thin, _ = evaluate(THIN, P, DESC)
    rich, _ = evaluate(RICH, P, DESC)
    assert thin is not None and rich is not None
    s_thin = candidate_score(DESC.texts(thin), P, DESC, thin, -1.0)
    s_rich = candidate_score(DESC.texts(rich), P, DESC, rich, -1.0)
    assert s_rich > s_thin
    # same text: the more probable sample scores higher
    assert candidate_score(DESC.texts(rich), P, DESC, rich, -0.5) > candidate_score(DESC.texts(rich), P, DESC, rich, -2)
    assert 0 <= length_fit(DESC, rich) <= 1


def test_pick_prefers_accepted_then_score_then_fewest_failures():
    ok_low, ok_high = ("out", [], 0.2), ("out", [], 0.9)
    bad = (None, [type("R", (), {"passed": False})()], 0.0)
    assert pick([bad, ok_low]) == 1
    assert pick([ok_low, bad, ok_high]) == 2
    worse = (None, [type("R", (), {"passed": False})()] * 3, 0.0)
    assert pick([worse, bad]) == 1


def test_best_of_n_publishes_the_best_accepted_candidate():
    seen = []

    def engine(reqs, attempt):
        seen.append([r.n for r in reqs])
        return [[Sample(REJECTED, 30, -0.2), Sample(THIN, 25, -0.3), Sample(RICH, 28, -0.9)][:r.n] for r in reqs]

    out = generate_with_retries([P], ["description"], engine, 3, spec=PromptSpec(candidates={"description": 3}))
    o = out[0]
    assert seen == [[3]] and o.attempts == 1 and o.samples["description"] == 3
    assert "750 ml" in o.outputs["description"].description  # RICH, not THIN, not the rejected one
    assert o.tokens == o.type_tokens["description"] == 83

    # one candidate per request (the default): the rejected sample is all there is, so it is retried
    out = generate_with_retries([P], ["description"], engine, 2)
    assert seen[-2:] == [[1], [1]] and out[0].outputs == {} and out[0].raw["description"] == REJECTED
