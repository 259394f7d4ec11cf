"""The live Flow Service checked against the published OpenAPI file (XP Z12-013 v1.3.0,
schemas/france-rfe-api/, unmodified) by schemathesis: generated requests for every
operation, every answer's status code, content type, headers and body checked against it."""
from __future__ import annotations

import copy
import json

import hypothesis
import pytest
import schemathesis

from flow_api_support import LiveApi, api_home, client_of, token
from gateway.core import config
from gateway.rules import manifest
from gateway.runtime.service import Gateway
from gateway.store.db import dispose_all
from sftp_support import free_port

import httpx

SPEC = manifest.packaged_root() / "france-rfe-api" / "ANNEXE_A_-XP_Z12-013_-_Flow_Service-1.3.0-swagger.json"
PUBLISHED = json.loads(SPEC.read_text(encoding="utf-8"))
# The one defect routed around, in memory only (the file stays as published): ReasonCode is
# `oneOf: [ReasonCodeEnum, {type: string}]`, and every value of the enum is a string too, so every
# reason code the standard names matches both branches and fails `oneOf`. Read as the authors meant it
# (a code of the list or any other string): `anyOf`. Nothing else of the file is touched.
REASON = PUBLISHED["components"]["schemas"]["ReasonCode"]
assert set(REASON) == {"description", "oneOf"}, "ReasonCode changed upstream: review this work-around"
FIXED = copy.deepcopy(PUBLISHED)
FIXED["components"]["schemas"]["ReasonCode"] = {"description": REASON["description"], "anyOf": REASON["oneOf"]}
schema = schemathesis.openapi.from_dict(FIXED)
HOMES: dict = {}


def live_home(base_url: str):  # noqa: ANN201
    return HOMES[base_url]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    s = api_home(tmp_path_factory.mktemp("openapi") / "home", f"port = {free_port()}\nlogin_failures = 1000\n")
    with LiveApi(s) as api:
        with httpx.Client(base_url=api.base) as http:
            tok = token(http, *client_of(s, "ACME"))
        HOMES[f"{api.base}/flow-service"] = s.home
        yield f"{api.base}/flow-service", {"Authorization": f"Bearer {tok}"}
    dispose_all()


@schema.parametrize()
@hypothesis.settings(max_examples=30, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_the_live_api_answers_as_the_published_openapi_says(case, live):
    base_url, auth = live
    excluded = []
    if case.operation.label == "POST /v1/flows":
        # Not a defect of the file: schemathesis expects schema-valid data to be accepted (2xx, 401, 403, 404,
        # 409, 429), but a deposit is also judged by rules a schema cannot say (the name must be a file name the
        # inbox takes, flowInfo.sha256 must be the file's), refused with the 422 the operation documents.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if case.operation.label == "POST /v1/flows/search":
        # Not a defect either: a cursor is one this server issued (nextCursor); the file's example cursor (another
        # server's) is refused with the 400 the operation documents.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if case.operation.label == "GET /v1/healthcheck":
        # A defect of the file: its global security covers the healthcheck too, yet that operation declares no
        # 401/403 answer (only 200, 500, 503). The gateway keeps it open for monitoring, so the check that every
        # operation refuses requests without credentials is left out for this one operation.
        excluded.append(schemathesis.checks.ignored_auth)
        # Same kind of defect: Request-Id is declared a UUID, but the operation declares no 400 answer to refuse
        # a malformed one with, so the check that such a request is refused is left out for it.
        excluded.append(schemathesis.checks.negative_data_rejection)
    if case.operation.label == "POST /v1/webhooks":
        # A defect of the file: the WebhookPostRequest body is not marked required, so a request without a body
        # counts as schema-valid, though callbackUrl is required inside it; the gateway answers 400.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if case.operation.label == "DELETE /v1/webhooks/{webhookUid}":
        # The file's history (1.2.0) announces webhook get and update, but it has no path for them; the gateway
        # serves GET and PUT on this path as extensions, so a 405 there allows more methods than the file lists.
        excluded.append(schemathesis.checks.allow_header_conformance)
    case.call_and_validate(base_url=base_url, headers=auth, excluded_checks=excluded)


def test_a_real_flow_and_its_search_answer_as_the_published_openapi_says(live, tmp_path):
    """Generated flowIds mostly find nothing: a flow deposited and processed is checked too
    (its Flow object with details, the FullFlowInfo of its deposit, a search listing it)."""
    base_url, auth = live
    if True:
        data = b"<Facture>not an invoice</Facture>"  # refused (IRR_TYPE_F): details to show
        posted = schema.make_case(operation=schema["/v1/flows"]["POST"],
            body={"flowInfo": {"name": "openapi-1.xml", "flowSyntax": "UBL"}, "file": data},
            media_type="multipart/form-data", headers=auth)
        r = posted.call_and_validate(base_url=base_url)
        assert r.status_code == 202
        fid = r.json()["flowId"]
    Gateway(config.load(live_home(base_url)), once=True).run()
    got = schema.make_case(operation=schema["/v1/flows/{flowId}"]["GET"], path_parameters={"flowId": fid}, headers=auth)
    flow = got.call_and_validate(base_url=base_url).json()
    assert flow["acknowledgement"]["status"] == "Error" and flow["acknowledgement"]["details"]
    found = schema.make_case(operation=schema["/v1/flows/search"]["POST"], body={"where": {"ackStatus": "Error"}}, headers=auth,
                                                         media_type="application/json")
    assert fid in [f["flowId"] for f in found.call_and_validate(base_url=base_url).json()["results"]]
