"""The error tree: messages, wire forms and which Azure errors are retryable."""

import pytest

from rollout.errors import (
    AZURE_ERRORS,
    AzureError,
    FieldProblem,
    InvalidRequest,
    PermissionDenied,
    ResourceNotFound,
    RolloutConflict,
    ServiceError,
    Throttled,
    TrafficDrift,
    TransientError,
    UpdateConflict,
)
from rollout.model import EndpointState


def test_invalid_request_names_every_field_in_its_message():
    error = InvalidRequest([FieldProblem("a", "is bad"), FieldProblem("b.c", "is worse")])
    assert str(error) == "a: is bad; b.c: is worse"
    assert [p.to_dict() for p in error.problems] == [{"field": "a", "message": "is bad"},
                                                     {"field": "b.c", "message": "is worse"}]


def test_a_conflict_names_the_running_instance():
    error = RolloutConflict("busy", "rollout-ep1")
    assert (str(error), error.instance_id) == ("busy", "rollout-ep1")


@pytest.mark.parametrize("error, wire", [
    pytest.param(lambda: Throttled("slow down", retry_after=15.0), {"kind": "Throttled", "message": "slow down",
                 "retryable": True, "retry_after": 15.0}, id="throttled"),
    pytest.param(lambda: UpdateConflict("busy"), {"kind": "UpdateConflict", "message": "busy", "retryable": True,
                 "retry_after": None}, id="conflict"),
    pytest.param(lambda: TransientError("503"), {"kind": "TransientError", "message": "503", "retryable": True,
                 "retry_after": None}, id="transient"),
    pytest.param(lambda: PermissionDenied("role"), {"kind": "PermissionDenied", "message": "role", "retryable": False,
                 "retry_after": None}, id="permission"),
    pytest.param(lambda: ServiceError("400"), {"kind": "ServiceError", "message": "400", "retryable": False,
                 "retry_after": None}, id="service"),
    pytest.param(lambda: ResourceNotFound("deployment", "green"), {"kind": "ResourceNotFound",
                 "message": "deployment 'green' not found", "retryable": False, "retry_after": None},
                 id="not-found-default-message"),
])
def test_azure_errors_wire_form(error, wire):
    assert error().to_dict() == wire   # built inside the test, so that mutation testing sees the constructor run


def test_not_found_keeps_kind_name_and_a_given_message():
    error = ResourceNotFound("endpoint", "ep1", "gone")
    assert (error.kind, error.name, str(error)) == ("endpoint", "ep1", "gone")


def test_the_wire_kinds_map_back_to_their_types():
    assert {"UpdateConflict": UpdateConflict, "Throttled": Throttled, "TransientError": TransientError,
                            "PermissionDenied": PermissionDenied, "ServiceError": ServiceError} == AZURE_ERRORS
    assert AzureError("x").retryable is False


def test_traffic_drift_names_the_traffic_found_and_keeps_the_endpoint():
    found = EndpointState("ep1", "Succeeded", {"blue": 70, "red": 30})
    error = TrafficDrift(found)
    assert error.found is found
    assert error.to_dict() == {"kind": "TrafficDrift", "message": "traffic changed outside this rollout: found "
                               "{'blue': 70, 'red': 30}", "retryable": False, "retry_after": None}


@pytest.mark.parametrize("error, text", [
    pytest.param(lambda: ResourceNotFound("endpoint", "ep1"), "endpoint 'ep1' not found", id="endpoint-default"),
    pytest.param(lambda: ResourceNotFound("deployment", "green", ""), "deployment 'green' not found",
                 id="empty-message-is-the-default"),
    pytest.param(lambda: AzureError("x", retry_after=2.5), "x", id="base"),
])
def test_azure_error_text_and_retry_after(error, text):
    built = error()
    assert str(built) == text and built.to_dict()["message"] == text
    assert built.retry_after == (2.5 if text == "x" else None)
