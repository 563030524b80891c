"""The API handler registry: what the broker serves, and so what ApiVersions advertises.

Each module in this package handles one family of APIs and registers each handler with the
versions it serves, e.g. `@handles(18, 0, 4)`. A handler is called with the request context
and the decoded request body and returns the response body, or None when no response is due
(Produce with acks=0). It may be a coroutine function when it has to wait (Fetch long poll);
everything else is a plain function. Domain failures become Kafka error codes inside the
response; any exception a handler raises is a bug, logged, and closes the connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Registration:
    api_key: int
    min_version: int
    max_version: int
    func: Handler
    is_async: bool


REGISTRY: dict[int, Registration] = {}


def handles(api_key: int, min_version: int, max_version: int) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of `api_key` for these versions."""

    def register(func: Handler) -> Handler:
        import inspect

        if api_key in REGISTRY:
            raise RuntimeError(f"api key {api_key} registered twice")
        REGISTRY[api_key] = Registration(
            api_key, min_version, max_version, func, inspect.iscoroutinefunction(func)
        )
        return func

    return register


def load_all() -> dict[int, Registration]:
    """Import every handler module in this package so that the registry is complete."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return REGISTRY
