"""What the provider contract tests need to know about each provider: how to start its fake, how to
point the service at it, and one scripted answer per error class, taken from the provider's docs.

Each fake module in tests/fakes/ that defines `CASE` joins the contract tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.fakes.server import FakeServer, Scripted


@dataclass(frozen=True)
class ProviderCase:
    name: str
    start_fake: Callable[[], FakeServer]
    env: Callable[[FakeServer], dict[str, str]]
    transient: Scripted
    permanent: Scripted
    configuration: Scripted
    spec_available: Callable[[], bool] | None  # None: the provider has no official spec to check against


def all_cases() -> dict[str, ProviderCase]:
    import importlib
    import pkgutil

    import tests.fakes

    cases = {}
    for module_info in pkgutil.iter_modules(tests.fakes.__path__):
        module = importlib.import_module(f"tests.fakes.{module_info.name}")
        case = getattr(module, "CASE", None)
        if case is not None:
            cases[case.name] = case
    return cases
