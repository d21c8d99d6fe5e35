"""Fixtures for the Azure adapter tests: one fake Azure for the session, a fresh state per test.

The adapters reach the fake exactly as they reach Azure: ``AzureSettings.cloud`` names a custom
cloud whose ARM metadata document (``cloud_metadata_url``) the fake serves, so azure-ai-ml
(through its ``cloud``/``cloud_metadata`` arguments), the Monitor client (``base_url``) and the
Logs client (``endpoint``/``audience``) all send their HTTPS requests to loopback. The transport
is the production one (``default_transport``) given the test CA; the credential is a static
token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from adapters.azure_backend import AzureBackend, AzureSettings
from adapters.azure_common import ClientTuning, default_transport
from emulator.scenario import Scenario
from rollout.model import WorkspaceRef
from tests.azure.fake_azure import TOKEN, FakeAzure
from tests.azure.scenario_azure import ScenarioAzure
from tests.azure.tls import TestPki, make_test_pki

CLOUD = "AmlRolloutLoopback"
SCENARIO_CLOUD = "AmlRolloutScenarioLoopback"
"""The scenario-backed fake's cloud: its own name, as azure-ai-ml registers a cloud's URLs once per process."""
WS = WorkspaceRef("00000000-1111-2222-3333-444444444444", "rg1", "ws1")
LA_WORKSPACE = "33333333-4444-5555-6666-777777777777"

# Production defaults except what would make tests slow: a short read timeout and LRO waits.
TEST_TUNING = ClientTuning(read_timeout=0.5, lro_poll_interval=0.01, lro_timeout=5.0)


class StaticCredential:
    """A ``TokenCredential`` that hands out one static token and records the scopes asked for."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """The session's CA and server certificate."""
    return make_test_pki(Path(tmp_path_factory.mktemp("pki")))


def _served(server: FakeAzure) -> Iterator[Any]:
    """Run a fake for the whole session. azure-ai-ml records the current cloud in the process
    environment (AZUREML_CURRENT_CLOUD) when an MLClient is built: it is put back afterwards."""
    server.start()
    with pytest.MonkeyPatch.context() as env:
        env.delenv("AZUREML_CURRENT_CLOUD", raising=False)
        yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_server(test_pki: TestPki) -> Iterator[FakeAzure]:
    """The fake, for the whole session."""
    yield from _served(FakeAzure(test_pki, CLOUD))


@pytest.fixture
def fake(fake_server: FakeAzure) -> FakeAzure:
    """The fake with a workspace ``ws1`` and nothing else."""
    fake_server.reset()
    fake_server.add_workspace(WS)
    return fake_server


@pytest.fixture
def credential() -> StaticCredential:
    return StaticCredential()


def make_backend(fake: FakeAzure, credential: Any, tuning: ClientTuning = TEST_TUNING, **settings: Any) -> AzureBackend:
    """An ``AzureBackend`` pointed at the fake through its cloud metadata."""
    options: dict[str, Any] = dict(
        log_analytics_workspace_id=LA_WORKSPACE, cloud=CLOUD,
        cloud_metadata_url=f"{fake.base_url}/metadata/endpoints?api-version=2022-09-01",
    )
    options.update(settings)
    transport = default_transport(tuning, connection_verify=str(fake.pki.ca_cert), use_env_settings=False)
    return AzureBackend(AzureSettings(WS.subscription_id, WS.resource_group, WS.workspace_name, **options),
                        credential=credential, transport=transport, tuning=tuning)


@pytest.fixture
def backend(fake: FakeAzure, credential: StaticCredential) -> AzureBackend:
    return make_backend(fake, credential)


@pytest.fixture(scope="session")
def scenario_server(test_pki: TestPki) -> Iterator[ScenarioAzure]:
    """The scenario-backed fake (``tests/azure/scenario_azure.py``), for the whole session."""
    yield from _served(ScenarioAzure(test_pki, SCENARIO_CLOUD, LA_WORKSPACE))


@pytest.fixture
def scenario_azure(scenario_server: ScenarioAzure) -> ScenarioAzure:
    """The scenario-backed fake with no world yet (``load`` one)."""
    scenario_server.reset()
    return scenario_server


def scenario_settings(server: ScenarioAzure, scenario: Scenario) -> AzureSettings:
    """Settings naming the scenario's workspace in the fake's cloud, with no ingestion lag: the simulated
    service has none, so a check reads exactly the window the in-memory metrics would."""
    ws = scenario.workspace
    return AzureSettings(ws.subscription_id, ws.resource_group, ws.workspace_name,
                         log_analytics_workspace_id=LA_WORKSPACE, metrics_lag_seconds=0, cloud=SCENARIO_CLOUD,
                         cloud_metadata_url=f"{server.base_url}/metadata/endpoints?api-version=2022-09-01")


def scenario_backend(server: ScenarioAzure, scenario: Scenario, credential: Any,
                     tuning: ClientTuning = TEST_TUNING) -> AzureBackend:
    """An ``AzureBackend`` reaching the scenario-backed fake through its cloud metadata, as ``make_backend`` does."""
    transport = default_transport(tuning, connection_verify=str(server.pki.ca_cert), use_env_settings=False)
    return AzureBackend(scenario_settings(server, scenario), credential=credential, transport=transport, tuning=tuning)
