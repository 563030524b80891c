import trio


async def test_trio_mode_runs_async_tests() -> None:
    send, recv = trio.open_memory_channel[int](1)
    await send.send(7)
    assert await recv.receive() == 7
