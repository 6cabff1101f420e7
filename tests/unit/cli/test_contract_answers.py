"""`awooop contracts`' lines: what each revision command did, and a refusal's one line."""

from __future__ import annotations

import httpx
import pytest

from awooop.cli.contract_client import refusal_line
from awooop.cli.contracts import describe_answer

pytestmark = pytest.mark.unit

HEAD = {"project_id": "acme", "contract_id": "payments", "revision": 3}


def test_each_verb_says_what_happened_in_one_line() -> None:
    signed = {**HEAD, "state": "published", "signers": ["alice"], "required_signatures": 2}
    assert describe_answer("sign", signed) == (
        "acme/payments: revision 3 signed (1 of 2 signatures: alice)"
    )
    active = {**HEAD, "state": "active", "signers": ["alice", "bob"], "superseded_revision": 2}
    assert describe_answer("activate", active) == (
        "acme/payments: revision 3 active (signed by alice, bob); revision 2 superseded"
    )
    assert describe_answer("retire", {**HEAD, "state": "retired"}) == (
        "acme/payments: revision 3 retired"
    )


def test_a_refusal_is_its_code_and_reason_and_anything_else_names_the_status() -> None:
    request = httpx.Request("POST", "http://approval/v1/contracts/acme/payments/drafts")
    coded = httpx.Response(
        422,
        json={"code": "E-CONTRACT-BODY-INVALID", "reason": "/mode: bad", "errors": ["/mode: bad"]},
        request=request,
    )
    assert refusal_line(coded) == "E-CONTRACT-BODY-INVALID: /mode: bad"
    other = httpx.Response(502, text="<html>\n bad gateway\n</html>", request=request)
    line = refusal_line(other)
    assert line.startswith("HTTP 502 from http://approval/")
    assert "\n" not in line
