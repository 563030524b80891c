"""Consumer groups, classic protocol: the coordinator state machine (`coordinator`), its
records in `__consumer_offsets` (`records`), and its place in the broker (`service`)."""

from broker.groups.coordinator import GroupCoordinator, GroupState
from broker.groups.service import GroupService

__all__ = ["GroupCoordinator", "GroupService", "GroupState"]
