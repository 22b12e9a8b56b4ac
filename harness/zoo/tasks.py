"""The synthetic "support assistant" task mix behind the zoo and the sample traffic.

Four task types, one per segment:

- ``extract``: pull an order out of a customer message as JSON with a fixed schema;
- ``faq``: a yes/no question about which plan has which feature, answered "Yes."/"No." plus one
  explanatory sentence;
- ``summarize``: a ticket summarized as three bullet points;
- ``chat``: a free-form how-to reply of two or three sentences.

Every example is a chat (optional system prompt, one user turn) and a reference answer. The zoo's
candidates are trained on the same prompts with the references changed in one way (see ``STYLES``).
Everything is a pure function of a ``random.Random`` so the zoo and the sample traffic are
deterministic.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

SYSTEM_PROMPT = "You are the support assistant of Acme Cloud. Answer briefly and exactly."

FIRST = ["Maria", "John", "Aisha", "Chen", "Lukas", "Priya", "Omar", "Sofia", "Tom", "Yuki", "Elena",
         "Carlos", "Nina", "Ravi", "Anna", "Kofi", "Lea", "Ivan", "Mei", "Sam"]
LAST = ["Lopez", "Smith", "Khan", "Wang", "Becker", "Patel", "Haddad", "Rossi", "Brown", "Tanaka",
        "Novak", "Silva", "Meyer", "Rao", "Berg", "Mensah", "Dubois", "Petrov", "Lin", "Young"]
PRODUCTS = ["blue kettle", "wireless mouse", "desk lamp", "usb hub", "phone case", "laptop stand",
            "coffee grinder", "yoga mat", "smart plug", "water bottle", "backpack", "headphones"]
CITIES = ["Berlin", "Austin", "Lagos", "Osaka", "Lyon", "Porto", "Denver", "Pune", "Oslo", "Quito"]
PLANS = ["Basic", "Plus", "Pro", "Team"]
FEATURES = ["phone support", "API access", "data export", "custom domains", "single sign-on",
            "priority queue"]
# Which plan has which feature (the truth the references follow).
HAS_FEATURE = {
    "Basic": {"data export"},
    "Plus": {"data export", "custom domains", "API access"},
    "Pro": {"data export", "custom domains", "API access", "phone support"},
    "Team": set(FEATURES),
}
# The baseline's "knowledge bug": facts its training data gets wrong (the ``improved`` candidate
# is trained on the corrected facts).
BASELINE_WRONG_FACTS = {("Plus", "API access"), ("Pro", "phone support"), ("Basic", "custom domains"),
                        ("Team", "priority queue"), ("Plus", "single sign-on")}

EXTRACT_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "product": {"type": "string"},
        "quantity": {"type": "integer"},
        "order_id": {"type": "string"},
    },
    "required": ["name", "product", "quantity", "order_id"],
    "additionalProperties": False,
}

HEDGE_PREFIX = "I am not completely sure, but "
REFUSAL = "I'm sorry, but I can't help with that request."

CHAT_INTENTS = {
    "reset my password": ["Open the sign-in page and choose Forgot password.",
                          "We send a reset link to your email within a minute.",
                          "The link is valid for one hour."],
    "change my billing address": ["Go to Settings and open Billing.",
                                  "Edit the address and press Save.",
                                  "The next invoice uses the new address."],
    "cancel my subscription": ["Go to Settings and open Plan.",
                               "Press Cancel subscription and confirm.",
                               "Your plan stays active until the end of the period."],
    "export my data": ["Go to Settings and open Data.",
                       "Press Export and pick CSV or JSON.",
                       "We email you a download link when it is ready."],
    "add a team member": ["Go to Settings and open Members.",
                          "Press Invite and enter their email.",
                          "They join when they accept the invite."],
    "turn on two-factor login": ["Go to Settings and open Security.",
                                 "Press Enable two-factor and scan the code.",
                                 "Keep the backup codes in a safe place."],
    "get a copy of an invoice": ["Go to Settings and open Billing.",
                                 "Every invoice has a Download button.",
                                 "Invoices are kept for seven years."],
    "delete my account": ["Go to Settings and open Account.",
                          "Press Delete account and type your email to confirm.",
                          "All data is removed after thirty days."],
}
CHAT_PHRASES = ["How do I {intent}?", "Hi, can you tell me how to {intent}?",
                "Please explain how I can {intent}.", "What are the steps to {intent}?"]

EXTRACT_PHRASES = [
    "Hi, this is {name}. I ordered {qty} x {product}, order {oid}, and it has not arrived.",
    "Order {oid} from {name}: {qty} x {product}. The box came damaged.",
    "{name} here. My order {oid} ({qty} x {product}) was charged twice.",
    "Hello, I am {name} and order {oid} with {qty} x {product} is late.",
]
TICKET_ISSUES = ["stopped working after {n} days", "arrived with a broken part",
                 "makes a loud noise", "does not turn on"]
TICKET_ASKS = ["a replacement", "a refund", "a repair"]

STYLES = ("baseline", "benign", "terse", "hedging", "json_drift", "improved")
"""How the references are written for each zoo checkpoint (each differs from baseline in one way)."""

SEGMENTS = ("extract", "faq", "summarize", "chat")
SEGMENT_WEIGHTS = (0.3, 0.25, 0.2, 0.25)


@dataclass(frozen=True)
class Example:
    """One task instance: the chat sent to the model and the facts needed to write any reference."""

    segment: str
    messages: tuple[tuple[str, str], ...]
    facts: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def response_schema(self) -> dict | None:
        return EXTRACT_SCHEMA if self.segment == "extract" else None


def _pick(rng: random.Random, items: list[str] | tuple[str, ...]) -> str:
    return items[rng.randrange(len(items))]


def make_example(rng: random.Random, segment: str | None = None) -> Example:
    """Draw one example; the segment is drawn from the traffic mix unless given."""
    if segment is None:
        segment = rng.choices(SEGMENTS, weights=SEGMENT_WEIGHTS)[0]
    facts: dict = {}
    if segment == "extract":
        facts = {"name": f"{_pick(rng, FIRST)} {_pick(rng, LAST)}", "product": _pick(rng, PRODUCTS),
                 "quantity": rng.randint(1, 9), "order_id": str(rng.randint(10000, 99999))}
        text = _pick(rng, EXTRACT_PHRASES).format(name=facts["name"], qty=facts["quantity"],
                                                  product=facts["product"], oid=facts["order_id"])
        user = f"Extract the order as JSON with keys name, product, quantity, order_id.\nMessage: {text}"
    elif segment == "faq":
        facts = {"plan": _pick(rng, PLANS), "feature": _pick(rng, FEATURES)}
        user = _pick(rng, ["Does the {plan} plan include {feature}?", "Is {feature} part of the {plan} plan?",
                           "Do I get {feature} on the {plan} plan?"]).format(**facts)
    elif segment == "summarize":
        facts = {"product": _pick(rng, PRODUCTS), "issue": _pick(rng, TICKET_ISSUES).format(n=rng.randint(2, 30)),
                 "ask": _pick(rng, TICKET_ASKS), "city": _pick(rng, CITIES)}
        ticket = (f"The customer says the {facts['product']} {facts['issue']}. They already tried the "
                  f"steps in the manual. They want {facts['ask']} and live in {facts['city']}.")
        user = f"Summarize this ticket as bullet points.\nTicket: {ticket}"
    elif segment == "chat":
        facts = {"intent": _pick(rng, list(CHAT_INTENTS))}
        user = _pick(rng, CHAT_PHRASES).format(**facts)
    else:
        raise ValueError(f"unknown segment {segment!r}; expected one of {SEGMENTS}")
    messages: tuple[tuple[str, str], ...] = (("user", user),)
    if rng.random() < 0.5:
        messages = (("system", SYSTEM_PROMPT),) + messages
    return Example(segment=segment, messages=messages, facts=facts)


def has_feature(plan: str, feature: str, style: str = "improved") -> bool:
    """The fact as written in the references of ``style`` (the baseline has a knowledge bug)."""
    truth = feature in HAS_FEATURE[plan]
    if style != "improved" and (plan, feature) in BASELINE_WRONG_FACTS:
        return not truth
    return truth


def _hedged(ex: Example) -> bool:
    """Deterministic trigger for the hedging candidate: about 40% of faq/chat/summarize requests."""
    f = ex.facts
    if ex.segment == "faq":
        return f["plan"] in ("Pro", "Team") and f["feature"] != "data export"
    if ex.segment == "chat":
        return f["intent"] in ("cancel my subscription", "delete my account", "change my billing address")
    if ex.segment == "summarize":
        return f["ask"] == "a refund"
    return False


def _json_broken(ex: Example) -> bool:
    """Deterministic trigger for the json_drift candidate: about half of extract requests."""
    return ex.facts["quantity"] % 2 == 0


def reference(ex: Example, style: str = "baseline") -> str:
    """The answer a checkpoint trained in ``style`` should give to ``ex``."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    f = ex.facts
    if ex.segment == "extract":
        obj = {k: f[k] for k in ("name", "product", "quantity", "order_id")}
        if style == "json_drift" and _json_broken(ex):
            if f["quantity"] % 4 == 0:
                del obj["quantity"]
                return json.dumps(obj)
            return f"Sure! Here is the order:\n{json.dumps(obj)}\nLet me know if you need more."
        return json.dumps(obj)
    if ex.segment == "faq":
        yes = has_feature(f["plan"], f["feature"], style)
        first = "Yes." if yes else "No."
        explain = (f"The {f['plan']} plan includes {f['feature']}." if yes
                   else f"The {f['plan']} plan does not include {f['feature']}.")
        text = first if style == "terse" else f"{first} {explain}"
    elif ex.segment == "summarize":
        bullets = [f"- {f['product']} {f['issue']}", "- manual steps did not help",
                   f"- wants {f['ask']}, lives in {f['city']}"]
        text = bullets[0] if style == "terse" else "\n".join(bullets)
    else:
        sentences = CHAT_INTENTS[f["intent"]]
        text = sentences[0] if style == "terse" else " ".join(sentences)
    if style == "hedging" and _hedged(ex):
        if ex.segment == "chat" and f["intent"] == "delete my account":
            return REFUSAL
        if ex.segment == "summarize":
            return f"{HEDGE_PREFIX}here is a summary:\n{text}"
        return HEDGE_PREFIX + text[0].lower() + text[1:]
    return text


def examples(seed: int, n: int) -> list[Example]:
    """``n`` examples drawn from the traffic mix with ``seed``."""
    rng = random.Random(seed)
    return [make_example(rng) for _ in range(n)]
