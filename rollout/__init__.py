"""The rollout domain: plans, health policy, traffic arithmetic, alert parsing and the error tree.

Nothing in this package imports Azure. Values are frozen dataclasses; their ``to_dict`` and
``from_dict`` are the JSON wire forms that cross Durable Functions boundaries.
"""
