"""ApiVersions (key 18), versions 0-4.

Advertises exactly the registered handlers' version ranges. A request at a version newer
than we serve is answered in v0 with UNSUPPORTED_VERSION and our ApiVersions range (KIP-511;
the connection layer calls `unsupported_version_response`). From v3 on, the client software
name and version must match Kafka's pattern, else INVALID_REQUEST. The response always
travels under response header v0 (`protocol.frames` takes care of that).
"""

from __future__ import annotations

import re

from broker.context import RequestContext
from broker.handlers import REGISTRY, handles
from protocol.errors import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import (
    ApiVersion,
    ApiVersionsResponse,
    FinalizedFeatureKey,
    SupportedFeatureKey,
)

API_KEY = 18
CONSUMER_GROUP_HEARTBEAT = 68
#: `group.version` 1 enables the KIP-848 consumer protocol; advertised only while we serve it.
GROUP_VERSION = "group.version"
_SOFTWARE_PATTERN = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


def advertised_api_versions() -> list[ApiVersion]:
    return [
        ApiVersion(api_key=r.api_key, min_version=r.min_version, max_version=r.max_version)
        for r in sorted(REGISTRY.values(), key=lambda r: r.api_key)
    ]


def features() -> tuple[list[SupportedFeatureKey], list[FinalizedFeatureKey]]:
    """(supported, finalized) features: `group.version` 0-1, finalized at 1, exactly when
    ConsumerGroupHeartbeat is served (as kfake and Kafka do)."""
    if CONSUMER_GROUP_HEARTBEAT not in REGISTRY:
        return [], []
    return ([SupportedFeatureKey(name=GROUP_VERSION, min_version=0, max_version=1)],
            [FinalizedFeatureKey(name=GROUP_VERSION, min_version_level=1, max_version_level=1)])


def unsupported_version_response() -> ApiVersionsResponse:
    """The v0 answer to an ApiVersions request at a version we do not serve."""
    own = REGISTRY[API_KEY]
    return ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION,
        api_keys=[ApiVersion(api_key=API_KEY, min_version=own.min_version,
                             max_version=own.max_version)],
    )


@handles(API_KEY, 0, 4)
def handle_api_versions(ctx: RequestContext, request: ApiVersionsRequest) -> ApiVersionsResponse:
    if ctx.api_version >= 3:
        name, software_version = request.client_software_name, request.client_software_version
        valid = _SOFTWARE_PATTERN.fullmatch(name) and _SOFTWARE_PATTERN.fullmatch(software_version)
        if not valid:
            return ApiVersionsResponse(error_code=ErrorCode.INVALID_REQUEST)
    supported, finalized = features() if ctx.api_version >= 3 else ([], [])
    return ApiVersionsResponse(error_code=ErrorCode.NONE, api_keys=advertised_api_versions(),
                               supported_features=supported,
                               finalized_features_epoch=0 if finalized else -1,
                               finalized_features=finalized)
