"""The labelling page's request rules: the token, Host, Origin, JSON content type, body size and grades."""

import json

import pytest

from embtune_pipeline.lib.evaluation.judgments import is_grade
from embtune_pipeline.lib.local_page import (MAX_BODY_BYTES, BadRequest, check_request, json_for_script,
                                             new_token, parse_grade_request, parse_json_body)

TOKEN = "s3cret-token"
PORT = 8765
OK = {"host": f"127.0.0.1:{PORT}", "x-embtune-token": TOKEN}


def status(method="GET", headers=OK, query_token=None) -> int:
    try:
        check_request(method, headers, query_token, TOKEN, PORT)
    except BadRequest as e:
        return e.status
    return 200


def test_the_page_and_the_api_need_the_token_in_the_url_or_the_header():
    assert status() == 200
    assert status(headers={"host": f"localhost:{PORT}"}, query_token=TOKEN) == 200
    assert status(headers={"host": f"127.0.0.1:{PORT}"}) == 403
    assert status(headers={**OK, "x-embtune-token": TOKEN[:-1]}) == 403
    assert status(headers={"host": f"127.0.0.1:{PORT}"}, query_token="") == 403
    assert new_token() != new_token() and len(new_token()) >= 32


def test_another_host_or_origin_is_refused_even_with_the_token():
    assert status(headers={**OK, "host": f"rebind.attacker.example:{PORT}"}) == 403  # DNS rebinding
    assert status(headers={**OK, "host": ""}) == 403
    assert status(headers={**OK, "origin": "http://attacker.example"}) == 403
    assert status(headers={**OK, "origin": "http://127.0.0.1:3000"}) == 403  # another local site is another origin
    assert status(headers={**OK, "origin": "null"}) == 403
    assert status(headers={**OK, "origin": f"http://localhost:{PORT}"}) == 200


def test_a_write_must_be_small_json():
    post = {**OK, "content-type": "application/json", "content-length": "60"}
    assert status("POST", post) == 200
    assert status("POST", {**post, "content-type": "application/json; charset=utf-8"}) == 200
    assert status("POST", {**post, "content-type": "text/plain"}) == 415  # a form or no-cors fetch can send this
    assert status("POST", {**OK, "content-length": "60"}) == 415
    assert status("POST", {**post, "content-length": str(50 * 2**20)}) == 413
    with pytest.raises(BadRequest) as e:
        parse_json_body(b"{" + b" " * MAX_BODY_BYTES + b"}")  # a body sent without a length is cut as it streams
    assert e.value.status == 413


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b'"grade"', b'{"grade": Infinity}', b'{"grade": NaN}',
                                  b"\xff\xfe"])
def test_malformed_json_is_a_400(body):
    with pytest.raises(BadRequest) as e:
        parse_json_body(body)
    assert e.value.status == 400


@pytest.mark.parametrize("grade", [2.9, 2.0, True, False, "2", None, 4, -1, [1]])
def test_only_the_integers_0_to_3_are_grades(grade):
    assert not is_grade(grade)
    with pytest.raises(BadRequest) as e:
        parse_grade_request({"query_id": "q1", "doc_id": "d1", "grade": grade})
    assert e.value.status == 400


def test_a_grade_request_is_typed():
    assert [is_grade(g) for g in range(4)] == [True] * 4
    got = parse_grade_request(parse_json_body(b'{"query_id": "q1", "doc_id": "d 2", "grade": 3}'))
    assert (got.query_id, got.doc_id, got.grade) == ("q1", "d 2", 3)
    for bad in ({"doc_id": "d", "grade": 1}, {"query_id": 7, "doc_id": "d", "grade": 1}):
        with pytest.raises(BadRequest):
            parse_grade_request(bad)


def test_json_placed_in_a_script_cannot_close_it():
    judge = "human:</script><script>alert(1)</script><!--"
    text = json_for_script({"judge": judge, "line": "a\u2028b"})
    assert "<" not in text and ">" not in text and "\u2028" not in text
    assert json.loads(text) == {"judge": judge, "line": "a\u2028b"}
