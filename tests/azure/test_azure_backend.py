"""AzureBackend: lazy, cached ports; clouds; what importing it costs."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.azure_backend import AzureBackend, AzureSettings
from adapters.azure_common import KNOWN_CLOUDS, ClientTuning, cloud_from_metadata, fetch_cloud
from rollout.errors import ServiceError
from rollout.model import WorkspaceRef
from tests.azure.conftest import WS, StaticCredential, make_backend
from tests.azure.fake_azure import FakeAzure

ROOT = Path(__file__).resolve().parents[2]
OTHER = WorkspaceRef("99999999-1111-2222-3333-444444444444", "rg2", "ws2")


def test_ports_are_built_once_per_workspace_and_source(backend: AzureBackend, fake: FakeAzure) -> None:
    assert backend.endpoints(WS) is backend.endpoints(None) is backend.endpoints(WS)
    assert backend.endpoints(OTHER) is not backend.endpoints(WS)
    assert backend.metrics(WS, "platform") is backend.metrics(None, "platform")
    assert backend.metrics(WS, "log_analytics") is not backend.metrics(WS, "platform")
    assert backend.metrics(OTHER, "platform") is not backend.metrics(WS, "platform")
    assert len(fake.calls(path="^/metadata/")) == 1  # the cloud is resolved once for everything


def test_concurrent_first_use_builds_one_port(backend: AzureBackend, fake: FakeAzure) -> None:
    with ThreadPoolExecutor(8) as pool:
        ports = list(pool.map(lambda _: backend.endpoints(WS), range(16)))
    assert all(port is ports[0] for port in ports)


def test_a_request_for_another_workspace_goes_to_that_workspace(backend: AzureBackend, fake: FakeAzure) -> None:
    fake.add_workspace(OTHER)
    fake.add_endpoint(OTHER, "ep9", {"blue": 100})
    fake.add_deployment(OTHER, "ep9", "blue")
    assert backend.endpoints(OTHER).get_endpoint("ep9").traffic == {"blue": 100}
    assert fake.calls("GET", "/onlineendpoints/ep9$")[0].path == OTHER.endpoint_id("ep9")


def test_without_a_default_workspace_a_request_must_name_one(fake: FakeAzure, credential: StaticCredential) -> None:
    backend = make_backend(fake, credential)
    unconfigured = AzureBackend(AzureSettings("", "", ""), credential=credential)
    with pytest.raises(ServiceError, match="no workspace"):
        unconfigured.endpoints(None)
    assert backend.endpoints(None).workspace == WS  # type: ignore[attr-defined]


def test_metric_sources(fake: FakeAzure, credential: StaticCredential) -> None:
    backend = make_backend(fake, credential, log_analytics_workspace_id=None)
    with pytest.raises(ServiceError, match="AML_ROLLOUT_LOG_ANALYTICS_WORKSPACE_ID"):
        backend.metrics(WS, "log_analytics")
    with pytest.raises(ValueError, match="platform"):
        backend.metrics(WS, "prometheus")


def test_tokens_are_asked_for_the_cloud_audiences(backend: AzureBackend, fake: FakeAzure,
                                                  credential: StaticCredential) -> None:
    fake.add_endpoint(WS, "ep1", {})
    fake.metrics_body = {"timespan": "x", "value": []}
    fake.logs_body = {"tables": [{"name": "PrimaryResult", "columns": [], "rows": []}]}
    start, end = datetime(2025, 1, 1, 12, 0, tzinfo=UTC), datetime(2025, 1, 1, 12, 10, tzinfo=UTC)
    backend.endpoints(WS).get_endpoint("ep1")
    backend.metrics(WS, "platform").deployment_metrics("ep1", ["blue"], start, end)
    backend.metrics(WS, "log_analytics").deployment_metrics("ep1", ["blue"], start, end)
    log_analytics = fake.base_url.replace("127.0.0.1", "localhost")
    assert set(credential.scopes) == {(f"{fake.base_url}/.default",), (f"{log_analytics}/.default",)}
    assert "authorization" not in fake.calls(path="^/metadata/")[0].headers


def test_the_public_clouds_need_no_metadata(fake: FakeAzure) -> None:
    from adapters.azure_common import default_transport

    tuning = ClientTuning()
    gov = fetch_cloud("azureusgovernment", None, default_transport(tuning), tuning)
    assert (gov.name, gov.resource_manager, gov.log_analytics, gov.ml_cloud_metadata) == (
        "AzureUSGovernment", "https://management.usgovcloudapi.net", "https://api.loganalytics.us", None)
    assert KNOWN_CLOUDS["azurechinacloud"].arm_scope == "https://management.chinacloudapi.cn/.default"
    assert fake.requests == []


def test_an_unknown_cloud_needs_its_metadata_url(fake: FakeAzure, credential: StaticCredential) -> None:
    with pytest.raises(ServiceError, match="ARM_CLOUD_METADATA_URL"):
        make_backend(fake, credential, cloud_metadata_url=None).endpoints(WS)
    with pytest.raises(ServiceError, match=r"'Elsewhere' is not in the ARM cloud metadata \(it has: AzureCloud, "):
        make_backend(fake, credential, cloud="Elsewhere").endpoints(WS)


def test_cloud_metadata_of_a_private_cloud() -> None:
    stack = {
        "name": "AzureStackUser", "portal": "https://portal.local.azurestack.external/",
        "authentication": {"loginEndpoint": "https://adfs.local.azurestack.external/adfs/",
                           "audiences": ["https://management.adfs.azurestack.local/abc"]},
        "resourceManager": "https://management.local.azurestack.external/",
        "suffixes": {"storage": "local.azurestack.external"},
    }
    cloud = cloud_from_metadata("azurestackuser", stack)
    assert (cloud.name, cloud.resource_manager, cloud.log_analytics, cloud.authority_host) == (
        "AzureStackUser", "https://management.local.azurestack.external", None, "adfs.local.azurestack.external/adfs")
    assert cloud.ml_cloud_metadata == {
        "azure_portal": "https://portal.local.azurestack.external/",
        "resource_manager": "https://management.local.azurestack.external/",
        "active_directory": "https://adfs.local.azurestack.external/adfs/",
        "aml_resource_id": "https://ml.local.azurestack.external/",
        "storage_endpoint": "local.azurestack.external",
        "registry_discovery_endpoint": "https://management.local.azurestack.external/",
    }
    with pytest.raises(ServiceError, match="lacks 'resourceManager'"):
        cloud_from_metadata("x", {"name": "x", "portal": "p", "authentication": {"loginEndpoint": "l"}})


def test_log_analytics_in_a_cloud_without_it_is_refused(fake: FakeAzure, credential: StaticCredential) -> None:
    from adapters.azure_common import default_transport
    from adapters.azure_monitor import build_logs_client

    tuning = ClientTuning()
    cloud = cloud_from_metadata("s", {"name": "s", "portal": "https://portal.s.example/", "resourceManager": "https://m/",
                                      "authentication": {"loginEndpoint": "https://l/"}, "suffixes": {"storage": "x"}})
    with pytest.raises(ServiceError, match="no Log Analytics endpoint"):
        build_logs_client(credential, cloud, default_transport(tuning), tuning)


def test_importing_the_backend_imports_no_azure_sdk() -> None:
    probe = ("import sys, adapters, adapters.azure_backend; "
             "print(sorted(m for m in sys.modules if m == 'azure' or m.startswith('azure.')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_unreadable_cloud_metadata_is_retried_on_the_next_call(fake: FakeAzure, credential: StaticCredential) -> None:
    from rollout.errors import TransientError

    backend = make_backend(fake, credential)
    fake.fail("GET", "^/metadata/endpoints$", 503, {"error": {"code": "ServiceUnavailable", "message": "later"}},
              times=3)
    with pytest.raises(TransientError, match="ARM cloud metadata"):
        backend.endpoints(WS)
    assert backend.endpoints(WS) is backend.endpoints(WS)
    assert len(fake.calls(path="^/metadata/")) == 4
