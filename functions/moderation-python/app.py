"""Moderation, in Python: the twin of functions/moderation (same behaviour),
the demo target of the fault-injection experiment through the
turbulence-extension layer instead of crates/inject.

POST {"text": "..."} answers 200 with {"verdict":"approved"}, or
{"verdict":"rejected","reasons":[...]} when the text holds a blocked word
(whole words, any case); a body that is not such JSON answers 400. It never
fails on its own: every 5XX or error it returns is injected by the layer.

No dependencies beyond the standard library, so the handler is this file.
"""

import json
import re

# The "model": words that get a text rejected (whole words, any case).
BLOCKED_WORDS = ("scam", "spam", "phishing", "malware")

# Rust's char::is_alphanumeric splits words the same way for this input.
_WORD_BREAK = re.compile(r"[^\w]|_")


def handler(event, context):
    """An API Gateway proxy event (REST or HTTP API) in, a proxy response out."""
    return moderate(event)


def moderate(event):
    try:
        text = read_text(event)
    except ValueError as problem:
        return respond(400, {"message": str(problem)})
    reasons = [
        blocked
        for word in _WORD_BREAK.split(text)
        for blocked in BLOCKED_WORDS
        if word.lower() == blocked
    ]
    if not reasons:
        return respond(200, {"verdict": "approved"})
    return respond(200, {"verdict": "rejected", "reasons": reasons})


def read_text(event):
    if not isinstance(event, dict):
        raise ValueError('missing body: send {"text": "..."}')
    if event.get("isBase64Encoded") is True:
        raise ValueError("send the body as JSON text, not base64")
    body = event.get("body")
    if not isinstance(body, str):
        raise ValueError('missing body: send {"text": "..."}')
    try:
        parsed = json.loads(body)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    text = parsed.get("text") if isinstance(parsed, dict) else None
    if not isinstance(text, str):
        raise ValueError('the body must be an object with a string "text"')
    return text


def respond(status, body):
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        # As serde_json writes it: keys in the order written, no spaces.
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
    }
