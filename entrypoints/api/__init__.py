"""The HTTP API (Litestar): `create_app(services)`; `wiring.build_api_services` builds the services."""

from domain.ports.discovery_api import DiscoveryApi
from entrypoints.api.app import create_app
from entrypoints.api.services import ApiServices, ReadinessCheck

__all__ = ["ApiServices", "DiscoveryApi", "ReadinessCheck", "create_app"]
