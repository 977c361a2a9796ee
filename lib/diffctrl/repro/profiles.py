"""Parameter profiles of a notebook.

Every notebook declares its profiles in one place, a dict ``{"smoke": {...}, "full": {...}}``
right after its ``parameters`` cell, and resolves them with :func:`select_profile`. ``smoke`` is
the size CI runs (seconds on two CPU cores); ``full`` is the size the published book uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["PROFILE_NAMES", "Profile", "select_profile"]

PROFILE_NAMES = ("smoke", "full")


class Profile(Mapping):
    """Read-only parameters of one profile; access as ``cfg.name`` or ``cfg["name"]``."""

    def __init__(self, name: str, values: Mapping[str, Any]):
        self._name = name
        self._values = MappingProxyType(dict(values))

    @property
    def profile(self) -> str:
        return self._name

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(
                f"profile {self._name!r} has no parameter {key!r}; "
                f"known: {sorted(self._values)}"
            ) from None

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Profile[{self._name}]({items})"


def select_profile(
    profiles: Mapping[str, Mapping[str, Any]],
    profile: str,
    overrides: Mapping[str, Any] | None = None,
) -> Profile:
    """Return the parameters of ``profile``, with ``overrides`` applied.

    Raises ``ValueError`` for an unknown profile name, for profiles that do not declare the same
    parameter names, and for an override whose name no profile declares: a typo is an error,
    never a silent default.
    """
    if not isinstance(profiles, Mapping) or not profiles:
        raise ValueError(
            "profiles must be a non-empty dict {profile name: {parameter: value}}"
        )
    missing = [p for p in PROFILE_NAMES if p not in profiles]
    if missing:
        raise ValueError(f"profiles must declare {PROFILE_NAMES}; missing {missing}")
    if profile not in profiles:
        raise ValueError(
            f"unknown profile {profile!r}; choose one of {sorted(profiles)}"
        )
    keys = {name: set(values) for name, values in profiles.items()}
    reference = keys[profile]
    for name, names in keys.items():
        if names != reference:
            raise ValueError(
                f"profiles {profile!r} and {name!r} declare different parameters: "
                f"{sorted(reference ^ names)}"
            )
    values = dict(profiles[profile])
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - reference)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} in overrides; this notebook's parameters are "
            f"{sorted(reference)}"
        )
    values.update(overrides)
    return Profile(profile, values)
