"""Who may reach /mcp: Host/Origin checks following ALLOWED_HOSTS, and the operator's bearer token."""

import hmac
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings


def transport_security(allowed_hosts: list[str]) -> TransportSecuritySettings:
    """DNS-rebinding protection following Django's ALLOWED_HOSTS: a foreign Host gets 421, a foreign Origin 403."""
    hosts = [_bracket_ipv6(h.strip().lower()) for h in allowed_hosts if h.strip()]
    if "*" in hosts:
        # Any Host goes (runserver_gym on a wildcard address): the SDK cannot check Origin alone,
        # so both checks are off and the token, required for such binds, is the guard.
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    # Django's ".example.com" also allows subdomains; the SDK matches exact names only.
    names = list(dict.fromkeys(h.lstrip(".") for h in hosts))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[form for name in names for form in (name, f"{name}:*")],
        allowed_origins=[f"{scheme}://{form}" for name in names for scheme in ("http", "https")
                         for form in (name, f"{name}:*")],
    )


def _bracket_ipv6(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def bearer_auth(token: str | None) -> dict[str, Any]:
    """MCPServer's auth arguments: none without a token, else bearer-only checks of that one token."""
    if not token:
        return {}
    # No OAuth server. AuthSettings insists on an issuer URL; with no auth_server_provider and
    # no resource_server_url nothing ever serves or advertises it.
    return {"token_verifier": StaticTokenVerifier(token),
            "auth": AuthSettings.model_validate({"issuer_url": "http://127.0.0.1", "resource_server_url": None})}


class StaticTokenVerifier:
    """The SDK's TokenVerifier for the one operator token (`--token` / GYM_API_TOKEN)."""

    def __init__(self, token: str):
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id="gymsite-operator", scopes=[])
        return None
