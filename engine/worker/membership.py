"""Static group membership (Kafka KIP-345) for the worker's consumer.

With ``RISKSTREAM_GROUP_INSTANCE_ID`` set, the worker joins its consumer group as a
*static* member: a worker that crashes and is started again with the same id (or is
replaced by a process with that id, e.g. a Kubernetes StatefulSet pod) takes its
partitions back as soon as it rejoins, with no rebalance and without waiting for its
old session to expire. A dynamic member restarted after ``kill -9`` waits instead for
the group to give up on its old self (``RISKSTREAM_KAFKA_SESSION_TIMEOUT_S``), and every
other member pauses for the rebalance that follows.

Every running worker of a group needs its own id: the broker fences the older of two
members that share one.

aiokafka supports static members except in one place: a static member never leaves the
group when it stops, so a worker stopped for good (scale-in) would leave its partitions
idle for a whole session timeout. :class:`StaticMemberCoordinator` leaves the group on
a graceful stop with a LeaveGroup request that names the instance (version 3, which
aiokafka does not define), so a stop hands the partitions over at once, as a dynamic
member's does. A crash sends nothing, which is the point.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Int16, Int32, Schema, String

log = logging.getLogger(__name__)


class LeaveGroupResponse_v3(Response):  # the protocol's own name
    API_KEY = 13
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        (
            "members",
            Array(
                ("member_id", String("utf-8")),
                ("group_instance_id", String("utf-8")),
                ("error_code", Int16),
            ),
        ),
    )


class LeaveGroupRequest_v3(RequestStruct):  # the protocol's own name
    API_KEY = 13
    API_VERSION = 3
    RESPONSE_TYPE = LeaveGroupResponse_v3
    SCHEMA = Schema(
        ("group", String("utf-8")),
        ("members", Array(("member_id", String("utf-8")), ("group_instance_id", String("utf-8")))),
    )


class StaticLeaveGroupRequest(Request[LeaveGroupRequest_v3]):
    """LeaveGroup for one static member: its member id and its group instance id."""

    API_KEY = 13

    def __init__(self, group: str, member_id: str, instance_id: str) -> None:
        self._group = group
        self._member = (member_id, instance_id)

    def build(self, request_struct_class: type[LeaveGroupRequest_v3]) -> LeaveGroupRequest_v3:
        return request_struct_class(self._group, [self._member])


class StaticMemberCoordinator(GroupCoordinator):
    """aiokafka's group coordinator, leaving the group on a graceful stop as a static member."""

    async def _maybe_leave_group(self) -> None:
        instance = self._group_instance_id
        if self.generation > 0 and instance is not None:
            request = StaticLeaveGroupRequest(self.group_id, self.member_id, instance)
            try:
                response = await self._send_req(request)
            except KafkaError as err:  # best effort, as aiokafka's own leave
                log.warning("static member %s could not leave the group: %s", instance, err)
            else:
                codes = [response.error_code, *(m[2] for m in response.members)]
                errors = [for_code(code).__name__ for code in codes if code]
                if errors:
                    log.warning("static member %s leaving the group: %s", instance, errors)
                else:
                    log.info("static member %s left the group", instance)
        await super()._maybe_leave_group()  # resets the generation (it sends nothing here)


def use_static_membership(consumer: Any, instance_id: str) -> None:
    """Make a *created, not yet started* aiokafka consumer join as static member ``instance_id``.

    The consumer creates its coordinator in ``start()``; :func:`leave_as_static_member`
    then gives it the graceful leave.
    """
    consumer._group_instance_id = instance_id


def leave_as_static_member(consumer: Any) -> None:
    """After ``start()``: the coordinator of a static member leaves the group when it stops
    (aiokafka offers no way to choose its class, so the instance is re-classed)."""
    coordinator = consumer._coordinator
    if coordinator is None or coordinator._group_instance_id is None:
        return
    if type(coordinator) is not GroupCoordinator:
        raise TypeError(f"expected aiokafka's GroupCoordinator, got {type(coordinator).__name__}")
    coordinator.__class__ = StaticMemberCoordinator
