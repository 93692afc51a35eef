"""One question at a time against the live index, with the engine kept warm: `shopgen ask` (in this
process) and the Ray Serve deployment behind `shopgen serve answers` (POST /answer). Same statuses,
same gate as the batch job."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from shopgen.adapters import models
from shopgen.answers.engine import Answerer
from shopgen.answers.stage import Source, answer_context
from shopgen.core.config import Settings
from shopgen.core.questions import Answer, Question

MAX_BODY_BYTES = 16 * 1024


class OnDemand:
    """The index source, the context and one engine, built once."""

    def __init__(self, settings: Settings, alias: str, es: Any = None):
        if es is None:
            from indexing.client import make_client

            es = make_client(settings)
        if not es.indices.exists(index=alias):
            raise LookupError(f"alias {alias!r} does not exist yet: run `shopgen nightly` first")
        self.settings, self.source = settings, Source(settings, alias=alias, es=es)
        self.ctx = answer_context(settings, self.source)
        model = models.resolve(models.answerer_ref(settings), settings)
        self.answerer = Answerer(model, settings, self.ctx)

    def answer(self, questions: list[Question]) -> list[Answer]:
        return self.answerer.answer(self.source.rows(questions))


def parse_request(body: bytes) -> Question:
    """A POST /answer body: {"question": ..., "sku"?, "locale"?, "id"?}. Raises ValueError with the reason."""
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"request body over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"body is not JSON: {type(e).__name__}") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object with a `question`")
    data = {"id": "request", **data}
    try:
        return Question.model_validate(data)
    except ValidationError as e:
        raise ValueError("; ".join(f"{'.'.join(map(str, x['loc'])) or 'body'}: {x['msg']}" for x in e.errors())) from None
