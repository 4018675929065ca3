"""The Litestar application: `create_app(services)`. OpenAPI: /schema (UI), /schema/openapi.json."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from domain.ports.discovery_api import DiscoveryApi
from entrypoints.api import (
    routes_cycles,
    routes_discovery,
    routes_evals,
    routes_paper,
    routes_portfolio,
    routes_system,
)
from entrypoints.api.auth import API_KEY_HEADER, ApiKeyGuard
from entrypoints.api.common import API_KEY_SCHEME
from entrypoints.api.errors import EXCEPTION_HANDLERS
from entrypoints.api.hosts import AllowedHosts, AllowedHostsMiddleware
from entrypoints.api.metrics import HttpMetricsMiddleware
from entrypoints.api.routes_health import health, metrics, ready
from entrypoints.api.services import ApiServices, ReadinessCheck

__all__ = ["ApiServices", "DiscoveryApi", "ReadinessCheck", "create_app"]
API_VERSION = "0.1.0"


def openapi_config() -> OpenAPIConfig:
    """OpenAPI 3.1 document "Quorum API" with the X-API-Key security scheme."""
    return OpenAPIConfig(
        title="Quorum API",
        version=API_VERSION,
        description="Control and observe the Quorum trading agent. Mutating endpoints need the "
                    f"{API_KEY_HEADER} header (QUORUM_API_KEY); reads are open to loopback clients only (when "
                    "configured, never through a proxy). "
                    'Errors are {"error": "...", "detail": ...}; money is a decimal string, times are ISO 8601.',
        path="/schema",
        render_plugins=[SwaggerRenderPlugin(path="/"), JsonRenderPlugin(), YamlRenderPlugin()],
        components=Components(security_schemes={API_KEY_SCHEME: SecurityScheme(
            type="apiKey", name=API_KEY_HEADER, security_scheme_in="header",
            description="the value of QUORUM_API_KEY")}),
        use_handler_docstrings=True,
    )


def create_app(services: ApiServices) -> Litestar:
    """The API application over `services`.

    Args:
        services: what the handlers use (see `ApiServices`).

    Returns:
        A Litestar app: /api/* and /metrics behind the API key guard, /health and /ready open, every request
        refused (400) unless its Host header names an allowed host.
    """
    guard = ApiKeyGuard(services.api_key, open_reads_on_loopback=services.open_reads_on_loopback)

    def provide_services() -> ApiServices:
        return services

    api = Router(path="/api", guards=[guard], route_handlers=[*routes_cycles.ROUTES, *routes_system.ROUTES,
                                                               *routes_portfolio.ROUTES, *routes_discovery.ROUTES,
                                                               *routes_evals.ROUTES, *routes_paper.ROUTES])
    scrape = Router(path="/", guards=[guard], route_handlers=[metrics])
    http_metrics = HttpMetricsMiddleware(services.prometheus)
    app = Litestar(
        route_handlers=[api, scrape, health, ready],
        dependencies={"services": Provide(provide_services, sync_to_thread=False, use_cache=True)},
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[AllowedHostsMiddleware(AllowedHosts(services.allowed_hosts)), http_metrics],
        openapi_config=openapi_config(),
        logging_config=None,
        debug=False,
    )
    http_metrics.route_templates = frozenset(route.path_format for route in app.routes)
    return app
