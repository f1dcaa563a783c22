"""Allow lists by client address: AUTH_IP_WHITELIST (GeoServer's role service,
portal.compat.geonode) and METRICS_ALLOW (/metrics), one rule for both.

The address is the one werkzeug's ProxyFix found behind TRUSTED_PROXIES. Without it, a proxy
on the same host makes every request come from loopback: such a request that carries
X-Forwarded-For or Forwarded is allowed by no list (fail closed), and the process warns once
that the proxy setting is missing."""

import ipaddress

from flask import current_app, request

from portal.config import ConfigError
from portal.web.logging import redact

ALLOW_LISTS = ("AUTH_IP_WHITELIST", "METRICS_ALLOW")
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded")

_missing_proxy_setting_logged = False


def parse_networks(name: str, setting) -> tuple:
    """An allow list: addresses or networks (CIDR), separated by commas or spaces."""
    entries = setting.replace(",", " ").split() if isinstance(setting, str) else list(setting)
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {entry!r} is not an IP address or network") from None
    return tuple(networks)


def register(app) -> None:
    """Parse both lists when the app is made: a bad entry stops the start, naming its setting."""
    app.extensions["allow_lists"] = {name: parse_networks(name, app.config[name]) for name in ALLOW_LISTS}


def forwarded_without_trusted_proxy(address) -> bool:
    """A loopback request with forwarding headers while TRUSTED_PROXIES=0: a proxy on this
    host relayed it, and the client behind the proxy is unknown."""
    if current_app.config["TRUSTED_PROXIES"] or not address.is_loopback:
        return False
    return any(name in request.headers for name in FORWARDING_HEADERS)


def warn_missing_proxy_setting() -> None:
    global _missing_proxy_setting_logged
    if _missing_proxy_setting_logged:
        return
    _missing_proxy_setting_logged = True
    current_app.logger.warning(
        "a request to %s came through a proxy (X-Forwarded-For or Forwarded from %s) but TRUSTED_PROXIES is 0: "
        "AUTH_IP_WHITELIST and METRICS_ALLOW refuse such requests; behind a proxy set TRUSTED_PROXIES=1",
        redact(request.path), request.remote_addr)


def client_allowed(allow_list: str) -> bool:
    """Is the request's client in the allow list named `allow_list` (a setting's name)?"""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    if forwarded_without_trusted_proxy(address):
        warn_missing_proxy_setting()
        return False
    return any(address in network for network in current_app.extensions["allow_lists"][allow_list])
