"""Resource indicators (RFC 8707) of the broker and the Databricks workspace each one names.

Security-critical: the path segment of a resource URL becomes part of an upstream *host name*.
Everything here works on the RAW string the client sent: no percent-decoding and no ``..``
normalisation, because either would let ``dbc-a%2F..`` or ``DBC-A/../x`` smuggle a different
host or path past the check. A segment must (1) fullmatch the configured pattern
case-insensitively, (2) be a DNS label (LDH, ≤ 63 characters). ``re.fullmatch`` is used because
``$`` alone also matches before a trailing newline (``"dbc-a\\n"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from broker.upstreams import Upstream

RESOURCE_PATH_PREFIX = "/v1/databricks-sql/"
#: Snowflake accounts (session passthrough, :mod:`broker.passthrough`); same raw-string rules.
SNOWFLAKE_PATH_PREFIX = "/v1/snowflake/"
RESOURCE_PATH_SUFFIX = "/mcp"
MAX_SEGMENT_LENGTH = 63
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class Target:
    """A validated resource and the workspace it maps to.

    ``resource`` is the client's string (kept verbatim: tokens are bound to it),
    ``segment`` the lower-cased path segment, ``workspace_url`` the upstream base URL
    (``http://dbc-aaa.cloud.databricks.test``) and ``workspace_host`` its host[:port].
    """

    resource: str
    segment: str
    workspace_url: str
    workspace_host: str
    #: The resource family (its provider, flow, scopes, upstream MCP path).
    upstream: Upstream

    @property
    def kind(self) -> str:
        """``databricks`` (token exchange at the workspace) or ``snowflake`` (session
        passthrough: ``workspace_url``/``workspace_host`` are then the account's)."""
        return self.upstream.provider

    @property
    def token_url(self) -> str:
        """The workspace token-federation endpoint (vendor-fidelity §A.3)."""
        return f"{self.workspace_url}/oidc/v1/token"

    @property
    def mcp_url(self) -> str | None:
        """The upstream MCP endpoint this resource fronts (gateway mode), if configured."""
        path = self.upstream.mcp_path
        return f"{self.workspace_url}{path}" if path else None


def is_valid_segment(segment: str, pattern: re.Pattern[str]) -> bool:
    """True when ``segment`` is an acceptable workspace name (see the module docstring)."""
    if not segment or len(segment) > MAX_SEGMENT_LENGTH:
        return False
    if _DNS_LABEL.fullmatch(segment) is None:
        return False
    return pattern.fullmatch(segment) is not None


def resource_url(base_url: str, segment: str) -> str:
    """The resource identifier of one workspace's SQL MCP server at this broker."""
    return f"{base_url}{RESOURCE_PATH_PREFIX}{segment}{RESOURCE_PATH_SUFFIX}"


def split_resource(
    resource: str, base_url: str, path_prefix: str = RESOURCE_PATH_PREFIX
) -> str | None:
    """The raw path segment of ``resource``, or None when its shape is not ours.

    The shape check is structural only (prefix, suffix, exactly one path segment, no query or
    fragment); whether the segment is acceptable is :func:`is_valid_segment`'s job.
    """
    if "?" in resource or "#" in resource:
        return None
    prefix = base_url + path_prefix
    if not resource.startswith(prefix) or not resource.endswith(RESOURCE_PATH_SUFFIX):
        return None
    if len(resource) < len(prefix) + len(RESOURCE_PATH_SUFFIX):
        return None
    segment = resource[len(prefix) : len(resource) - len(RESOURCE_PATH_SUFFIX)]
    if "/" in segment:
        return None
    return segment


def workspace_for(segment: str, host_template: str) -> tuple[str, str]:
    """(workspace base URL, host) for an already validated segment, lower-cased."""
    url = host_template % segment.lower()
    return url, urlsplit(url).netloc
