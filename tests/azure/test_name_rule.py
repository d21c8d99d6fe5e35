"""Endpoint and deployment names: our rule is azure-ai-ml's own, checked against its validator.

``rollout.plan.is_valid_name`` must accept exactly what azure-ai-ml's
``validate_endpoint_or_deployment_name`` accepts, except a trailing newline: the SDK's pattern ends
in ``$``, which lets one through, and ARM refuses such a name in the resource path.
"""

from __future__ import annotations

import os

from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.plan import is_valid_name


def sdk_accepts(name: str) -> bool:
    try:
        validate_endpoint_or_deployment_name(name)
        validate_endpoint_or_deployment_name(name, is_deployment=True)
    except Exception:
        return False
    return True


NEAR_VALID = st.from_regex(r"[A-Za-z][-A-Za-z0-9]{0,33}[A-Za-z0-9-]?", fullmatch=True)
EDITS = st.sampled_from(["", "\n", "-", "_", ".", " ", "\u00e9", "\u0661", "\uff21"])


@settings(max_examples=int(os.environ.get("AML_ROLLOUT_FUZZ_EXAMPLES", "200")), deadline=None)
@given(name=st.one_of(st.text(max_size=40), st.tuples(NEAR_VALID, EDITS).map("".join),
                      st.tuples(EDITS, NEAR_VALID).map("".join)))
def test_names_are_accepted_exactly_as_azure_ml_accepts_them(name: str) -> None:
    assert is_valid_name(name) == (sdk_accepts(name) and not name.endswith("\n"))


def test_the_sdk_lets_a_trailing_newline_through_and_we_do_not() -> None:
    assert sdk_accepts("green\n") and not is_valid_name("green\n")
