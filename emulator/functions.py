"""The worker's side of the task hub: the functions an app registered, and calling an activity.

``FunctionRegistry.from_app`` finds the ``orchestrationTrigger`` and ``activityTrigger`` bindings
in ``app.get_functions()`` under the names the host knows them by. ``call_activity`` calls an
activity as the Python worker does: input decoded and result encoded by the worker's own
``ActivityTriggerConverter``; an exception becomes the reason the extension reports. Names are
looked up ignoring case, as the host looks them up.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from emulator.worker import registered_functions


class UnknownFunction(LookupError):
    """No orchestrator (or activity) of that name is registered."""


@dataclass(frozen=True)
class RegisteredActivity:
    """An activity function and the name of its ``activityTrigger`` parameter."""

    function: Callable[..., Any]
    input_name: str


@dataclass(frozen=True)
class ActivityOutcome:
    """What an activity call produced: ``result_json``, or a failure ``reason`` and ``details``."""

    result_json: str | None = None
    reason: str | None = None
    details: str = ""

    @property
    def failed(self) -> bool:
        return self.reason is not None


@dataclass(frozen=True)
class FunctionRegistry:
    """The orchestrators and activities a ``DFApp`` registered, by the name the host knows them by."""

    orchestrators: dict[str, Callable[[str], str]]
    activities: dict[str, RegisteredActivity]

    @classmethod
    def from_app(cls, app: df.DFApp) -> FunctionRegistry:
        """Find triggers in ``app.get_functions()``: ``orchestrationTrigger`` and ``activityTrigger`` bindings."""
        orchestrators: dict[str, Callable[[str], str]] = {}
        activities: dict[str, RegisteredActivity] = {}
        for function in registered_functions(app):
            for binding in function.get_bindings():
                if binding.type == "orchestrationTrigger":
                    name = getattr(binding, "orchestration", None) or function.get_function_name()
                    orchestrators[name] = function.get_user_function()
                elif binding.type == "activityTrigger":
                    name = getattr(binding, "activity", None) or function.get_function_name()
                    activities[name] = RegisteredActivity(function.get_user_function(), binding.name)
        return cls(orchestrators, activities)

    def orchestrator(self, name: str) -> Callable[[str], str]:
        """The orchestrator registered as ``name`` (ignoring case); ``UnknownFunction`` (the host's message) otherwise."""
        function = _by_name(self.orchestrators, name)
        if function is None:
            raise UnknownFunction(f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function.")
        return function

    def call_activity(self, name: str, input_json: str | None) -> ActivityOutcome:
        """Call the activity as the Python worker does.

        The failure reason is what the extension reports: ``Activity function '<name>' failed:
        <Type>: <message>`` (two spaces, as the extension puts them around the worker's text);
        the details are the Python traceback without this module's frame.
        """
        activity = _by_name(self.activities, name)
        if activity is None:
            return ActivityOutcome(reason=f"The activity function '{name}' doesn't exist.")
        try:
            argument = ActivityTriggerConverter.decode(meta.Datum(input_json, "json"), trigger_metadata=None)
            result = activity.function(**{activity.input_name: argument})
            if inspect.isawaitable(result):
                result = _run_coroutine(result)
            return ActivityOutcome(result_json=ActivityTriggerConverter.encode(result, expected_type=None).value)
        except Exception as exc:
            return ActivityOutcome(reason=f"Activity function '{name}' failed:  {type(exc).__name__}: {exc}",
                                   details=_user_traceback(exc))


def _by_name(functions: dict[str, Any], name: str) -> Any:
    """``functions[name]``, names compared ignoring case as the host compares them (the extension's
    ``FunctionName.Equals``: ``StringComparison.OrdinalIgnoreCase``); None when there is none."""
    found = functions.get(name)
    if found is None:
        found = next((f for known, f in functions.items() if known.upper() == name.upper()), None)
    return found


def _user_traceback(exc: BaseException) -> str:
    """The traceback of an activity exception without the calling frame of this module."""
    tb = exc.__traceback__
    frames = tb.tb_next if tb is not None and tb.tb_frame.f_code.co_filename == __file__ else tb
    return "".join(traceback.format_exception(type(exc), exc, frames))


def _run_coroutine(awaitable: Any) -> Any:
    async def wait() -> Any:
        return await awaitable

    return asyncio.run(wait())
