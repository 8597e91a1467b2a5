"""Salesforce answers and transport failures → our error tree, Salesforce's words kept."""

from __future__ import annotations

import httpx
import pytest

from ctibridge.crm.salesforce.errors import (
    BUSY_RETRY_AFTER,
    DAILY_LIMIT_RETRY_AFTER,
    api_usage,
    error_for,
    error_from_response,
    map_crm_errors,
)
from ctibridge.errors import CrmAuthError, CrmRejected, CrmUnavailable

LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_validation_errors_keep_message_code_and_fields() -> None:
    body = [
        {
            "message": "Phone: enter a number with a country code",
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "fields": ["Phone"],
        },
        {
            "message": "Required fields are missing: [LastName]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName"],
        },
    ]
    error = error_for(400, body)
    assert isinstance(error, CrmRejected)
    assert error.message == (
        "Phone: enter a number with a country code; Required fields are missing: [LastName]"
    )
    assert error.details["error_code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert error.details["fields"] == ["Phone", "LastName"]
    assert error.details["errors"][1]["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_collection_results_say_status_code() -> None:
    error = error_for(
        400, [{"statusCode": "MALFORMED_ID", "message": "bad id", "fields": ["WhoId"]}]
    )
    assert isinstance(error, CrmRejected)
    assert (error.details["error_code"], error.details["fields"]) == ("MALFORMED_ID", ["WhoId"])


def test_401_is_an_auth_error() -> None:
    error = error_for(
        401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    )
    assert isinstance(error, CrmAuthError)
    assert error.message == "Session expired or invalid"


def test_api_disabled_is_an_auth_error_not_a_rejection() -> None:
    body = [
        {
            "message": "The REST API is not enabled for this Organization.",
            "errorCode": "API_DISABLED_FOR_ORG",
        }
    ]
    assert isinstance(error_for(403, body), CrmAuthError)


def test_request_limit_is_unavailable_with_a_retry_hint() -> None:
    exhausted = error_for(403, LIMIT, {"Sforce-Limit-Info": "api-usage=15000/15000"})
    assert isinstance(exhausted, CrmUnavailable)
    assert exhausted.details["retry_after"] == DAILY_LIMIT_RETRY_AFTER
    busy = error_for(403, LIMIT, {"Sforce-Limit-Info": "api-usage=120/15000"})
    assert busy.details["retry_after"] == BUSY_RETRY_AFTER
    told = error_for(403, LIMIT, {"Retry-After": "42", "Sforce-Limit-Info": "api-usage=1/2"})
    assert told.details["retry_after"] == 42.0


@pytest.mark.parametrize("status", [420, 500, 502, 503])
def test_server_trouble_is_unavailable(status: int) -> None:
    error = error_for(status, None, {"Retry-After": "7"})
    assert isinstance(error, CrmUnavailable)
    assert error.details["retry_after"] == 7.0
    assert error.message == f"Salesforce answered HTTP {status}"


def test_a_locked_row_is_worth_a_retry() -> None:
    error = error_for(
        400, [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access"}]
    )
    assert isinstance(error, CrmUnavailable)


@pytest.mark.parametrize("status", [300, 404, 409])
def test_other_client_errors_are_rejections(status: int) -> None:
    assert isinstance(error_for(status, [{"message": "x", "errorCode": "NOT_FOUND"}]), CrmRejected)


def test_unreadable_body_still_maps_by_status() -> None:
    response = httpx.Response(502, text="<html>bad gateway</html>")
    assert isinstance(error_from_response(response), CrmUnavailable)


def test_api_usage_header() -> None:
    usage = api_usage({"Sforce-Limit-Info": "api-usage=25/15000"})
    assert usage is not None and (usage.used, usage.max, usage.exhausted) == (25, 15000, False)
    assert api_usage({}) is None
    assert api_usage({"Sforce-Limit-Info": "api-usage=x/y"}) is None


def test_map_crm_errors_maps_transport_failures_from_the_original() -> None:
    original = httpx.ConnectError("connection refused")
    with pytest.raises(CrmUnavailable, match="cannot reach Salesforce") as caught, map_crm_errors():
        raise original
    assert caught.value.__cause__ is original
    with pytest.raises(CrmUnavailable, match="in time"), map_crm_errors():
        raise httpx.ReadTimeout("slow")


def test_map_crm_errors_maps_status_errors_and_lets_ours_through() -> None:
    request = httpx.Request("GET", "https://x.test/")
    response = httpx.Response(
        400, json=[{"message": "bad", "errorCode": "INVALID_FIELD"}], request=request
    )
    with pytest.raises(CrmRejected, match="bad"), map_crm_errors():
        response.raise_for_status()
    ours = CrmAuthError("no")
    with pytest.raises(CrmAuthError) as caught, map_crm_errors():
        raise ours
    assert caught.value is ours
