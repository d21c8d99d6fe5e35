"""The embedded local runtime: runs the registered functions in-process, without the Functions host.

Durable orchestrations go through the real ``azure-functions-durable`` replay engine
(``taskhub``), on a virtual or real clock (``clock``); the Durable HTTP management API is served
on loopback (``management_api``) so the unchanged ``DurableOrchestrationClient`` works; Azure ML
and Azure Monitor are simulated (``simulated_azure``) from a scenario (``scenario``).
"""
