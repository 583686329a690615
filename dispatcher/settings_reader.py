"""Reading typed values from the environment, naming the variable in every error: what `dispatcher.settings`
and each provider's declaration (`dispatcher.provider_registry`) read their variables with."""

from __future__ import annotations

from collections.abc import Mapping


class SettingsError(ValueError):
    """A configuration value is missing or wrong; the message names the variable."""


class Reader:
    """Reads typed values from an environment mapping, naming the variable in every error."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def raw(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def integer(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise SettingsError(f"{name} must be at least {minimum}{upper}, got {number}")
        return number

    def fraction(self, name: str, default: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name} must be a number between 0 and 1, got {value!r}") from None
        if not 0 <= number <= 1:
            raise SettingsError(f"{name} must be between 0 and 1, got {number}")
        return number

    def number(self, name: str, default: float, minimum: float, unit: str) -> float:
        """A decimal number of `unit` (seconds, messages/s), at least `minimum`."""
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name} must be a number of {unit}, got {value!r}") from None
        if number < minimum:
            raise SettingsError(f"{name} must be at least {minimum:g} {unit}, got {number:g}")
        return number

    def url(self, name: str, required: bool, why: str = "") -> str:
        value = self.raw(name)
        if value is None:
            if required:
                raise SettingsError(f"{name} must be set{why}")
            return ""
        if not value.startswith(("http://", "https://")):
            raise SettingsError(f"{name} must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    def required(self, name: str, why: str) -> str:
        value = self.raw(name)
        if value is None:
            raise SettingsError(f"{name} must be set{why}")
        return value

    def names(self, name: str, why: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in self.required(name, why).split(",") if part.strip())
        if not names:
            raise SettingsError(f"{name} must name at least one{why}")
        return names

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
        return value

    def keep_count(self, name: str, default: int | None) -> int | None:
        """The legacy system's JOB_REMOVE_ON_* values: `true` keeps none, `false` keeps all, N keeps the newest N.

        Returns how many to keep: None for all.
        """
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered == "true":
            return 0
        if lowered == "false":
            return None
        return self.integer(name, 0)
