"""Settings a test spells out: built from its arguments only, never from the environment or a `.env` file."""

from __future__ import annotations

from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from entrypoints.settings import Settings


class ExplicitSettings(Settings):
    """`Settings` whose only source is the constructor's arguments (defaults for the rest)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def explicit_settings(**values: Any) -> Settings:
    """Settings of `values` and the defaults (the simulated broker, offline agents, the embedded database...)."""
    return ExplicitSettings(**values)
