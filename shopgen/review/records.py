"""The review's records (pure): one decision a person (or the nightly) made on one text of one
product and content type, the reasons a text is rejected for, and a text's hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["approve", "reject", "edit", "regenerated"]
HUMAN_ACTIONS = ("approve", "reject", "edit")

# The reject reasons: the copy audit's labelling rules (docs/COPY_AUDIT.md) under the review's names,
# plus `unsafe` and `other`. AUDIT_REASON maps each to the audit set's own `reason`.
AUDIT_REASON = {
    "invented_fact": "invented_fact", "wrong_role_or_unit": "wrong_role", "not_fluent": "not_fluent",
    "wrong_kind": "wrong_form", "unsafe": "unsafe", "other": "other", "contact_or_claim": "contact_or_claim",
    "prompt_echo": "prompt_echo", "contradiction": "contradiction", "no_fact": "no_fact",
    "wrong_language": "wrong_language", "malformed": "malformed",
}
REJECT_REASONS: tuple[str, ...] = tuple(AUDIT_REASON)
REASON_HELP = {
    "invented_fact": "states a fact the product's facts do not give",
    "wrong_role_or_unit": "a fact in the wrong role or unit (15000 mm as 15000%)",
    "not_fluent": "a copy editor would not run it unchanged",
    "wrong_kind": "the wrong kind of text for its type (a bare label as a bullet)",
    "unsafe": "harmful, offensive or legally risky",
    "other": "another reason",
    "contact_or_claim": "contact details, a price or discount, a superlative or a health claim",
    "prompt_echo": "repeats the prompt or template residue",
    "contradiction": "contradicts itself or the facts",
    "no_fact": "states no fact of the product",
    "wrong_language": "not in the product's language",
    "malformed": "empty or cut off",
}


def text_hash(fields: dict[str, Any]) -> str:
    """A text's identity: its type's output fields, canonically encoded."""
    blob = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class Decision(BaseModel):
    """One append-only entry of an item's history. `seq` numbers an item's entries from 1: an entry
    is written only as the item's next seq, so of two decisions made on the same view one wins."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    type: str
    seq: int = Field(ge=1)
    action: Action
    reason: str | None = None
    note: str | None = None
    text_hash: str  # the text decided on
    text: dict[str, Any] = Field(default_factory=dict)  # its output fields
    edited: dict[str, Any] | None = None  # edit: the published fields
    content_hash: str | None = None  # the product's facts the decision was made against
    product: dict[str, Any] | None = None  # those facts, as the generator saw them (for the audit export)
    reviewer: str
    at: str
    audit: bool = False  # the text was in the uniform audit sample
    gate_accepted: bool = True

    @property
    def published(self) -> dict[str, Any] | None:
        """The fields the decision publishes: the edit, the approved text, or None (rejected)."""
        if self.action == "edit":
            return self.edited
        if self.action == "approve":
            return self.text
        return None

    @property
    def locks(self) -> bool:
        return self.action in ("approve", "edit")

