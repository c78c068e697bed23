"""Who is acting, and what their roles allow. Pure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from yuyue.kit.errors import Forbidden
from yuyue.scheduling.enums import Channel
from yuyue.staff.enums import Role


class ActorKind(StrEnum):
    CHANNEL = "channel"
    STAFF = "staff"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    hospital_id: uuid.UUID
    kind: ActorKind
    id: str
    channel: Channel
    roles: frozenset[Role] = field(default_factory=frozenset)
    name: str = ""
    # The doctor a staff user works as (their own sessions and queues).
    doctor_id: uuid.UUID | None = None

    @property
    def audit_name(self) -> str:
        """What the audit trail records as "who"."""
        who = self.channel.value if self.kind is ActorKind.CHANNEL else self.name or "-"
        return f"{self.kind.value}:{who}:{self.id}"[:80]

    @property
    def is_staff(self) -> bool:
        return self.kind is ActorKind.STAFF

    def has_role(self, *roles: Role) -> bool:
        return self.kind is ActorKind.STAFF and (
            Role.ADMIN in self.roles or bool(self.roles & set(roles))
        )


def require_staff(actor: Actor, *roles: Role) -> None:
    if not actor.has_role(*roles):
        raise Forbidden()


def system_actor(hospital_id: uuid.UUID, name: str = "system") -> Actor:
    return Actor(hospital_id=hospital_id, kind=ActorKind.SYSTEM, id=name, channel=Channel.WINDOW)


# Staff at the hospital book into the on-site pools, as the window does.
STAFF_CHANNEL = Channel.WINDOW
