from protocol.messages.api_versions_request import ApiVersionsRequest


async def test_wire_client_round_trip(wire) -> None:
    response = await wire.request(18, 3, ApiVersionsRequest("odradek-tests", "1"))
    assert response.error_code == 0
    assert any(v.api_key == 18 for v in response.api_keys)
