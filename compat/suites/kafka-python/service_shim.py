"""Stand-in for kafka-python's `test/service.py`, which its PyPI sdist does not ship.

The integration fixtures (`test/integration/fixtures.py`) import `ExternalService` and
`SpawnedService` from `test.service`. Against an external broker (`KAFKA_URI` set) only
`ExternalService` is used, as a placeholder that owns no process. `SpawnedService` starts a
broker or ZooKeeper of the suite's own, which is out of scope here (our run points the suite
at Odradek), so it refuses with a clear error instead of pretending.
"""


class ExternalService:
    """A service running elsewhere: nothing to start, stop or read logs from."""

    def __init__(self, host, port):
        self.host = host
        self.port = port

    def start(self):
        pass

    def stop(self):
        pass

    def dump_logs(self):
        pass

    def wait_for(self, pattern, timeout=30):
        return True


class SpawnedService:
    """A broker the suite would start itself: not available in this harness."""

    def __init__(self, args=None, env=None):
        raise RuntimeError("this test starts its own broker (SpawnedService), which the "
                           "Odradek suite harness does not provide")
