"""Mirror limits, instances per step, and the quota check: one named row per case."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rollout.capacity import (
    TOTAL_DEDICATED,
    CapacityRejected,
    CapacitySpec,
    QuotaUsage,
    VmSize,
    autoscale_quota_warning,
    check_quota,
    family_key,
    instances_per_step,
    mirror_plan,
    parse_capacity,
    parse_mirror,
    quota_cores,
    quota_refusal,
    required_instances,
)
from rollout.errors import InvalidRequest


@pytest.mark.parametrize("traffic, mirror, percent, expected", [
    pytest.param({"blue": 100}, {}, 10, {"green": 10}, id="plain"),
    pytest.param({"Blue": 100}, {"GREEN": 5}, 50, {"green": 50}, id="replaces-own-mirror-at-the-cap"),
    pytest.param({"blue": 80, "red": 20}, {}, 20, {"green": 20}, id="third-deployment-live"),
])
def test_mirror_plan(traffic: dict[str, int], mirror: dict[str, int], percent: int, expected: dict[str, int]) -> None:
    assert mirror_plan(traffic, mirror, "Green", percent) == expected


@pytest.mark.parametrize("traffic, mirror, percent, message", [
    pytest.param({"blue": 90, "green": 10}, {}, 10, "has 10% live traffic", id="new-has-live-traffic"),
    pytest.param({"blue": 100}, {"red": 10}, 10, "mirrors to one deployment only", id="already-mirrors-elsewhere"),
    pytest.param({"blue": 100}, {}, 51, "outside 1-50", id="above-fifty"),
    pytest.param({"blue": 100}, {}, 0, "outside 1-50", id="zero"),
    pytest.param({}, {}, 10, "no live traffic", id="nothing-served"),
])
def test_mirror_plan_refuses_what_azure_refuses(traffic: dict[str, int], mirror: dict[str, int], percent: int,
                                                 message: str) -> None:
    with pytest.raises(CapacityRejected, match=message):
        mirror_plan(traffic, mirror, "green", percent)


@pytest.mark.parametrize("data, field", [
    pytest.param({"percent": 51}, "mirror.percent", id="percent-above-azure-cap"),
    pytest.param({"percent": 0}, "mirror.percent", id="percent-zero"),
    pytest.param({"percent": 10.5}, "mirror.percent", id="percent-not-integer"),
    pytest.param({}, "mirror.percent", id="percent-missing"),
    pytest.param({"percent": 10, "window": "PT30S"}, "mirror.window", id="window-too-short"),
    pytest.param({"percent": 10, "window": "soon"}, "mirror.window", id="window-not-duration"),
    pytest.param({"percent": 10, "deployment": "x"}, "mirror.deployment", id="unknown-field"),
])
def test_parse_mirror_names_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_mirror(data)
    assert field in [p.field for p in caught.value.problems]


def test_parse_mirror_defaults_and_round_trip() -> None:
    spec = parse_mirror({"percent": 20})
    assert spec.window == timedelta(minutes=10)
    assert parse_mirror(spec.to_dict()) == spec


@pytest.mark.parametrize("old, share, step, count, spec, expected", [
    pytest.param(4, 100, 25, 1, CapacitySpec(), 2, id="quarter-of-four-with-headroom"),
    pytest.param(4, 100, 100, 1, CapacitySpec(), 5, id="all-traffic-is-old-plus-headroom"),
    pytest.param(10, 100, 10, 1, CapacitySpec(headroom=1.0), 1, id="exact-no-headroom"),
    pytest.param(3, 50, 50, 1, CapacitySpec(headroom=1.0), 3, id="old-held-half"),
    pytest.param(4, 100, 10, 2, CapacitySpec(), 2, id="floor-is-instance-count"),
    pytest.param(40, 100, 100, 1, CapacitySpec(max_instances=20), 20, id="clamped-to-max"),
    pytest.param(2, 100, 50, 3, CapacitySpec(max_instances=2), 3, id="instance-count-beats-max"),
    pytest.param(3, 100, 40, 1, CapacitySpec(headroom=1.25), 2, id="float-noise-does-not-round-up"),
    pytest.param(5, 0, 50, 1, CapacitySpec(), 1, id="old-held-nothing"),
    pytest.param(1, 100, 100, 1, CapacitySpec(headroom=1.0000000001), 1, id="below-a-billionth-is-noise"),
])
def test_required_instances(old: int, share: int, step: int, count: int, spec: CapacitySpec, expected: int) -> None:
    assert required_instances(old, share, step, count, spec) == expected


def test_instances_per_step_never_shrink() -> None:
    assert instances_per_step(4, 100, (10, 25, 50, 75, 100), 1, CapacitySpec()) == (1, 2, 3, 4, 5)


@pytest.mark.parametrize("data, field", [
    pytest.param({"max_instances": 0}, "capacity.max_instances", id="max-zero"),
    pytest.param({"max_instances": 51}, "capacity.max_instances", id="max-above-azure-limit"),
    pytest.param({"headroom": 0.5}, "capacity.headroom", id="headroom-below-one"),
    pytest.param({"headroom": "lots"}, "capacity.headroom", id="headroom-string"),
    pytest.param({"min": 1}, "capacity.min", id="unknown-field"),
])
def test_parse_capacity_names_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_capacity(data)
    assert field in [p.field for p in caught.value.problems]


@pytest.mark.parametrize("instances, vcpus, cores", [
    pytest.param(1, 4, 8, id="one-4-core-needs-8-as-azure-reported"),
    pytest.param(1, 16, 32, id="one-16-core-needs-32-as-azure-reported"),
    pytest.param(10, 4, 48, id="docs-example-ten-ds3"),
    pytest.param(5, 2, 12, id="five-rounds-up"),
    pytest.param(0, 4, 0, id="none-holds-nothing"),
    pytest.param(-1, 4, 0, id="negative-holds-nothing"),
])
def test_quota_cores(instances: int, vcpus: int, cores: int) -> None:
    assert quota_cores(instances, vcpus) == cores


DS3 = VmSize("Standard_DS3_v2", "standardDSv2Family", 4)
FAMILY = "Standard DSv2 Family Cluster Dedicated vCPUs"


@pytest.mark.parametrize("peak, held, usages, needed, free, ok", [
    pytest.param(2, 0, [QuotaUsage(FAMILY, 10, 24)], 12, 14, True, id="fits-in-family"),
    pytest.param(5, 0, [QuotaUsage(FAMILY, 10, 24)], 24, 14, False, id="family-too-small"),
    pytest.param(5, 2, [QuotaUsage(FAMILY, 10, 24)], 12, 14, True, id="held-instances-already-counted"),
    pytest.param(2, 0, [QuotaUsage(FAMILY, 0, 100), QuotaUsage(TOTAL_DEDICATED, 20, 24)], 12, 4, False,
                 id="regional-total-is-tighter"),
    pytest.param(2, 0, [QuotaUsage("Standard D Family Cluster Dedicated vCPUs", 0, 0)], 12, None, True,
                 id="other-family-only-azure-decides"),
    pytest.param(2, 0, [QuotaUsage(FAMILY, 3, -1)], 12, None, True, id="negative-limit-is-no-limit"),
])
def test_check_quota(peak: int, held: int, usages: list[QuotaUsage], needed: int, free: int | None, ok: bool) -> None:
    check = check_quota(DS3, peak, held, usages)
    assert (check.needed, check.free, check.ok) == (needed, free, ok)


def test_quota_refusal_says_cores_needed_and_free() -> None:
    check = check_quota(DS3, 5, 0, [QuotaUsage(FAMILY, 10, 24)])
    text = quota_refusal(DS3, 5, check)
    assert "needs 24 more cores" in text and "14 free" in text and FAMILY in text


@pytest.mark.parametrize("text", [
    pytest.param("standardDSv2Family", id="vm-sizes-api"),
    pytest.param("Standard DSv2 Family Cluster Dedicated vCPUs", id="usage-name"),
    pytest.param("Standard_DSv2_Family_Cluster_Dedicated_vCPUs", id="usage-id-suffix"),
])
def test_family_key(text: str) -> None:
    assert family_key(text) == "dsv2"


# --- exact texts and bounds (each row kills a mutant that the rows above let live) --------------------


@pytest.mark.parametrize("data, spec", [
    pytest.param({"percent": 1, "window": "PT1M"}, (1, timedelta(minutes=1)), id="lowest-percent-and-window"),
    pytest.param({"percent": 50, "window": "P1D"}, (50, timedelta(days=1)), id="highest-percent-and-window"),
    pytest.param({"percent": 20, "window": None}, (20, timedelta(minutes=10)), id="null-window-is-the-default"),
])
def test_parse_mirror_accepts(data: dict[str, object], spec: tuple[int, timedelta]) -> None:
    parsed = parse_mirror(data)
    assert (parsed.percent, parsed.window) == spec


@pytest.mark.parametrize("data, problems", [
    pytest.param([10], [("m", "must be an object with percent and window")], id="not-an-object"),
    pytest.param({"percent": 10, "to": "x"}, [("m.to", "is not a known field")], id="unknown-field"),
    pytest.param({"percent": 51}, [("m.percent", "must be an integer from 1 to 50 (Azure mirrors at most 50% of traffic)")],
                 id="percent-above-50"),
    pytest.param({"percent": True}, [("m.percent", "must be an integer from 1 to 50 (Azure mirrors at most 50% of traffic)")],
                 id="percent-bool"),
    pytest.param({"percent": 10, "window": "PT59S"}, [("m.window", "must be between PT1M and P1D")],
                 id="window-under-a-minute"),
    pytest.param({"percent": 10, "window": "P1DT1S"}, [("m.window", "must be at most P1D")], id="window-over-a-day"),
])
def test_parse_mirror_problem_text(data: object, problems: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_mirror(data, "m.")
    assert [(p.field, p.message) for p in caught.value.problems] == problems


@pytest.mark.parametrize("traffic, mirror, percent, message", [
    pytest.param({"blue": 90, "Green": 10}, {}, 10,
                 "mirror: 'Green' has 10% live traffic; Azure mirrors only to a deployment with none", id="live"),
    pytest.param({"blue": 100}, {"red": 10, "amber": 5}, 10,
                 "mirror: the endpoint already mirrors to amber, red; Azure mirrors to one deployment only",
                 id="elsewhere-all-named"),
    pytest.param({"blue": 0}, {}, 10, "mirror: the endpoint serves no live traffic to copy", id="nothing-served"),
    pytest.param({"blue": 100}, {}, 0, "mirror: 0% is outside 1-50%", id="zero"),
])
def test_mirror_plan_refusal_text(traffic: dict[str, int], mirror: dict[str, int], percent: int, message: str) -> None:
    with pytest.raises(CapacityRejected) as caught:
        mirror_plan(traffic, mirror, "Green", percent)
    assert str(caught.value) == message


def test_mirror_plan_lowest_percent() -> None:
    assert mirror_plan({"blue": 100}, {}, "green", 1) == {"green": 1}


@pytest.mark.parametrize("data, spec", [
    pytest.param({}, CapacitySpec(50, 1.2), id="defaults"),
    pytest.param({"max_instances": 1, "headroom": 1}, CapacitySpec(1, 1.0), id="lowest"),
    pytest.param({"max_instances": 50, "headroom": 10.0}, CapacitySpec(50, 10.0), id="highest"),
])
def test_parse_capacity_accepts(data: dict[str, object], spec: CapacitySpec) -> None:
    parsed = parse_capacity(data)
    assert parsed == spec and isinstance(parsed.headroom, float)
    assert parse_capacity(parsed.to_dict()) == parsed


@pytest.mark.parametrize("data, problems", [
    pytest.param("x", [("c", "must be an object")], id="not-an-object"),
    pytest.param({"min": 1}, [("c.min", "is not a known field")], id="unknown-field"),
    pytest.param({"max_instances": "8"}, [("c.max_instances", "must be an integer from 1 to 50")], id="max-string"),
    pytest.param({"max_instances": True}, [("c.max_instances", "must be an integer from 1 to 50")], id="max-bool"),
    pytest.param({"headroom": 10.5}, [("c.headroom", "must be a number from 1 to 10")], id="headroom-above-10"),
    pytest.param({"headroom": True}, [("c.headroom", "must be a number from 1 to 10")], id="headroom-bool"),
])
def test_parse_capacity_problem_text(data: object, problems: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_capacity(data, "c.")
    assert [(p.field, p.message) for p in caught.value.problems] == problems


@pytest.mark.parametrize("steps, planned", [
    pytest.param((50, 25, 100), (3, 3, 5), id="a-lower-step-keeps-the-instances"),
    pytest.param((), (), id="no-steps"),
])
def test_instances_per_step_order(steps: tuple[int, ...], planned: tuple[int, ...]) -> None:
    assert instances_per_step(4, 100, steps, 1, CapacitySpec()) == planned


def test_old_share_of_one_percent_is_counted() -> None:
    assert required_instances(1, 1, 10, 1, CapacitySpec(headroom=1.0)) == 10


@pytest.mark.parametrize("peak, held, usages, needed, free, line", [
    pytest.param(1, 3, [QuotaUsage(FAMILY, 10, 24)], 0, 14, FAMILY, id="shrinking-needs-nothing"),
    pytest.param(1, 0, [QuotaUsage(FAMILY, 0, 0)], 8, 0, FAMILY, id="zero-limit-is-a-limit"),
    pytest.param(1, 0, [QuotaUsage(FAMILY, 30, 24)], 8, 0, FAMILY, id="over-used-line-has-none-free"),
    pytest.param(1, 0, [QuotaUsage(FAMILY, 0, 30), QuotaUsage(TOTAL_DEDICATED, 40, 50)], 8, 10, TOTAL_DEDICATED,
                 id="tightest-is-least-free-not-smallest"),
])
def test_check_quota_lines(peak: int, held: int, usages: list[QuotaUsage], needed: int, free: int, line: str) -> None:
    check = check_quota(DS3, peak, held, usages)
    assert check.to_dict() == {"needed_cores": needed, "free_cores": free, "quota": line, "ok": needed <= free}


def test_vm_size_and_usage_round_trip() -> None:
    assert VmSize.from_dict({"name": "Standard_F4s_v2", "family": "standardFSv2Family", "vcpus": "4"}) == \
        VmSize("Standard_F4s_v2", "standardFSv2Family", 4)
    assert VmSize.from_dict(DS3.to_dict()) == DS3
    usage = QuotaUsage(FAMILY, 10, 24)
    assert usage.to_dict() == {"name": FAMILY, "current": 10, "limit": 24}
    assert QuotaUsage.from_dict({"name": FAMILY, "current": "10", "limit": "-1"}) == QuotaUsage(FAMILY, 10, -1)
    assert QuotaUsage.from_dict(usage.to_dict()) == usage


@pytest.mark.parametrize("ceiling, free, warning", [
    pytest.param(3, 16, None, id="ceiling-covered-no-warning"),
    pytest.param(4, 16, "autoscale.max_instances 4 x Standard_DS3_v2 is not covered by the quota: needs 20 more cores "
                 "(ceil(1.2 x 4) x 4 vCPUs), 16 free in 'Standard DSv2 Family Cluster Dedicated vCPUs'; scale-outs "
                 "beyond 3 instance(s) will fail (Azure autoscale fails soft: the deployment keeps serving at what it "
                 "has). Request more quota for the family or lower autoscale.max_instances", id="warning-in-full"),
])
def test_autoscale_quota_warning_text(ceiling: int, free: int, warning: str | None) -> None:
    ds3 = VmSize("Standard_DS3_v2", "standardDSv2Family", 4)
    usages = [QuotaUsage("Standard DSv2 Family Cluster Dedicated vCPUs", 20, 20 + free)]
    assert autoscale_quota_warning(ds3, ceiling, 1, 0, usages) == warning
