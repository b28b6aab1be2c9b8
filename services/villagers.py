"""Villagers (issue 11, item 2): the people a village agent shops for (代购), registered at the
agent's point with their recorded consent.

The model, and why. A villager is a row of its own (`domain.Villager`), not a password-less
`User` like the farmers an agent enrolls (services/catalog/consents.py). A `User` needs a phone
of its own (`users.phone` is unique and required: it is the login), and a villager may have no
phone or share the family's one with several others; a made-up number would receive texts meant
for someone else. So the villager row carries the name, village, optional (non-unique) phone,
notes and consent, and `user_id` is set only when the villager registers an account themself.

Proxy orders (the next item) keep `Order.buyer_id` pointing at a `User` as today: the placing
agent (`placed_by_id`, whose Standing.BUYER already covers orders placed for someone) or the
villager's linked account, and name the villager on the order (`orders.villager_id`). That keeps
every existing buyer rule, ledger posting and notification path unchanged.

Rules chosen where the issue is silent:
- Linking ("linked, not duplicated"): when someone registers an account, every unlinked villager
  whose phone and name are exactly the registrant's phone (proved by the SMS code) and display
  name is linked to it. A family phone serves several villagers with different names; only the
  one whose name the registrant gives is linked. No display name: nothing is linked.
- Registered twice: the same name in the same village with the same phone (or both without one)
  at the same point → 409, nothing written.
- Consent: how it was given (in person, signed paper, or the SMS code read out from the phone:
  only possible with a phone), by which agent and when.
- Who sees what is `services.authz.VILLAGER_RIGHTS`: in full the point's agent, the county's staff
  and the villager; everyone else gets `present()`'s masked view (王*, 138****0061). A villager
  the actor may not view is "not found" (404), as an order is to a stranger.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import ConsentMethod, Division, DivisionLevel, Node, Role, SmsPurpose, User, Villager, clock
from services import authz
from services.accounts import AuthPolicy, consume_sms_code, request_code_for_someone
from services.authz import VillagerRight
from services.catalog import audit
from services.errors import Conflict, Forbidden, NotFound, ValidationError
from services.i18n import _
from services.places import enrollment_point, enrollment_villages
from services.search.text import initials, normalize, syllables
from services.sms import SmsGateway
from services.validation import check_text, mask_phone, normalize_phone

MAX_RESULTS = 50
_DIGITS_RE = re.compile(r"^[0-9]{3,11}$")
_LETTERS_RE = re.compile(r"^[a-z]+$")


@dataclass(frozen=True)
class VillagerInput:
    name: str
    village_code: str
    phone: str = ""
    notes: str = ""
    consent_method: str = ConsentMethod.IN_PERSON.value
    code: str = ""  # the SMS code read out, when consent_method is "sms"


@dataclass(frozen=True)
class VillagerView:
    """A villager as one person may see them: in full, or masked."""

    id: int
    name: str
    phone: str
    village_name: str
    point_id: int
    full: bool
    notes: str = ""
    consent_method: str = ""
    consented_at: datetime | None = None
    consent_agent_id: int | None = None
    linked: bool = False


def mask_name(name: str) -> str:
    """王秀英 → 王*: the family name only."""
    return f"{name[:1]}*" if name else ""


def name_pinyin(name: str) -> tuple[str, str]:
    """The full toneless pinyin and the initials of a name (王秀英 → wangxiuying, wxy)."""
    sylls = [s for run in re.findall(r"[\u3400-\u9fff]+", name) for s in syllables(run)]
    return "".join(sylls), initials(sylls)


def _point(session: Session, actor: User | None, point_id: int | None) -> Node:
    """The point an agent acts for: their only one, or the one asked for."""
    actor = authz.require_user(actor)
    points = sorted(authz.node_ids(actor, Role.AGENT))
    if not points:
        raise Forbidden(_("Only village agents can do this."))
    if point_id is None:
        if len(points) > 1:
            raise ValidationError(_("Choose the service point you act for."))
        point_id = points[0]
    point = session.get(Node, point_id)
    if point is None or VillagerRight.MANAGE not in authz.villager_rights(actor, point):
        raise Forbidden()
    return point


def _viewable_point(session: Session, actor: User | None, point_id: int | None) -> Node:
    """The point whose villagers are listed: the agent's own, or one county staff ask for."""
    actor = authz.require_user(actor)
    if point_id is None:
        return _point(session, actor, None)
    point = session.get(Node, point_id)
    if point is None or VillagerRight.VIEW not in authz.villager_rights(actor, point):
        raise Forbidden()
    return point


def point_for_village(session: Session, actor: User | None, village_code: str) -> int | None:
    """The agent's point that serves the village (None: the service asks them to choose)."""
    return enrollment_point(enrollment_villages(session, actor), village_code)


def request_consent_code(
    session: Session,
    gateway: SmsGateway,
    actor: User | None,
    phone: str,
    policy: AuthPolicy,
    *,
    ip: str = "",
    now: datetime | None = None,
) -> str:
    """An agent has the consent code sent to the villager's (family) phone; returns the number."""
    return request_code_for_someone(
        session,
        gateway,
        actor,
        phone,
        SmsPurpose.VILLAGER_CONSENT,
        policy,
        own_number=_("Enter the villager's mobile number, not your own."),
        ip=ip,
        now=now,
    )


def _find_by_key(session: Session, point: Node, key: str | None) -> Villager | None:
    if not key:
        return None
    return session.scalar(
        select(Villager).where(Villager.point_id == point.id, Villager.idempotency_key == key)
    )


def _duplicate() -> Conflict:
    msg = _("This villager is already registered at your service point.")
    return Conflict(msg, field_errors={"name": [msg]})


def register_villager(
    session: Session,
    actor: User | None,
    data: VillagerInput,
    *,
    point_id: int | None = None,
    idempotency_key: str | None = None,
    policy: AuthPolicy | None = None,
    now: datetime | None = None,
) -> Villager:
    """Register a villager at the agent's point with their consent. A repeated request with the
    same idempotency key returns the villager the first one made."""
    actor = authz.require_user(actor)
    point = _point(session, actor, point_id)
    now = now or clock.now()
    key = (idempotency_key or "").strip()[:64] or None
    existing = _find_by_key(session, point, key)
    if existing is not None:
        return existing
    errors: dict[str, list[str]] = {}

    def field(name: str, fn: Callable[[], str]) -> str | None:
        try:
            return fn()
        except ValidationError as exc:
            errors.update(exc.field_errors or {name: [exc.message]})
            return None

    name = field("name", lambda: check_text(data.name, "name", max_len=40, required=True))
    notes = field("notes", lambda: check_text(data.notes, "notes", max_len=200))
    phone = field("phone", lambda: normalize_phone(data.phone) if (data.phone or "").strip() else "")
    try:
        method = ConsentMethod(data.consent_method)
    except ValueError:
        method = None
        errors["consent_method"] = [_("Choose how the villager gave their consent.")]
    village = session.get(Division, (data.village_code or "").strip()) if data.village_code else None
    # A point serves the villages of its own town (the first 9 digits of a village code).
    if (
        village is None
        or village.level != DivisionLevel.VILLAGE
        or village.code[:9] != point.division_code[:9]
    ):
        errors["village_code"] = [_("Choose a village served by your service point.")]
    if method == ConsentMethod.SMS and not phone and "phone" not in errors:
        errors["phone"] = [_("Consent by SMS code needs the villager's phone.")]
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    assert village is not None and method is not None and name is not None and phone is not None
    taken = session.scalar(
        select(Villager.id).where(
            Villager.point_id == point.id,
            Villager.village_code == village.code,
            Villager.name == name,
            Villager.phone == phone,
        )
    )
    if taken is not None:
        raise _duplicate()
    if method == ConsentMethod.SMS:
        if policy is None:  # pragma: no cover - a caller's mistake
            raise ValueError("policy is needed to check an SMS consent code")
        consume_sms_code(session, phone, SmsPurpose.VILLAGER_CONSENT, data.code, policy, now)
    pinyin, letters = name_pinyin(name)
    villager = Villager(
        point_id=point.id,
        village_code=village.code,
        name=name,
        name_pinyin=pinyin[:160],
        name_initials=letters[:40],
        phone=phone,
        notes=notes or "",
        consent_method=method,
        consent_agent_id=actor.id,
        consented_at=now,
        idempotency_key=key,
        created_at=now,
        updated_at=now,
    )
    session.add(villager)
    try:
        session.flush()
        audit.record(
            session,
            actor,
            "register_villager",
            "villager",
            villager.id,
            {"point_id": point.id, "consent_method": method.value},
        )
        session.commit()
    except IntegrityError:
        # A concurrent request won: the same key returns its villager, the same person is a 409.
        session.rollback()
        again = _find_by_key(session, point, key)
        if again is not None:
            return again
        raise _duplicate() from None
    return villager


def list_villagers(
    session: Session,
    actor: User | None,
    *,
    q: str = "",
    point_id: int | None = None,
    limit: int = MAX_RESULTS,
) -> list[Villager]:
    """The villagers of a point, found by name, phone (digits) or pinyin (full or initials)."""
    point = _viewable_point(session, actor, point_id)
    stmt = select(Villager).where(Villager.point_id == point.id)
    text = normalize(q or "")[:40].strip()
    compact = text.replace(" ", "")
    if compact:
        if _DIGITS_RE.fullmatch(compact):
            stmt = stmt.where(Villager.phone.contains(compact, autoescape=True))
        elif _LETTERS_RE.fullmatch(compact):
            stmt = stmt.where(
                or_(Villager.name_initials.startswith(compact), Villager.name_pinyin.startswith(compact))
            )
        else:
            stmt = stmt.where(Villager.name.contains((q or "").strip()[:40], autoescape=True))
    return list(
        session.scalars(
            stmt.order_by(Villager.name_pinyin, Villager.id).limit(max(1, min(limit, MAX_RESULTS)))
        )
    )


def _load(session: Session, villager_id: int) -> Villager:
    villager = session.get(Villager, villager_id)
    if villager is None:
        raise NotFound(_("No such villager."))
    return villager


def get_villager(session: Session, actor: User | None, villager_id: int) -> Villager:
    """A villager in full, for those who may view them; anyone else: not found."""
    actor = authz.require_user(actor)
    villager = _load(session, villager_id)
    if VillagerRight.VIEW not in authz.villager_rights(actor, villager.point, villager.user_id):
        raise NotFound(_("No such villager."))
    return villager


def update_notes(
    session: Session, actor: User | None, villager_id: int, notes: str, *, now: datetime | None = None
) -> Villager:
    """The point's agent changes the notes ("deliver to daughter")."""
    actor = authz.require_user(actor)
    villager = get_villager(session, actor, villager_id)
    if VillagerRight.MANAGE not in authz.villager_rights(actor, villager.point, villager.user_id):
        raise Forbidden()
    notes = check_text(notes, "notes", max_len=200)
    if notes != villager.notes:
        audit.record(
            session, actor, "villager_notes", "villager", villager.id, {"notes": [villager.notes, notes]}
        )
        villager.notes = notes
        villager.updated_at = now or clock.now()
    session.commit()
    return villager


def can_manage(actor: User | None, villager: Villager) -> bool:
    return VillagerRight.MANAGE in authz.villager_rights(actor, villager.point, villager.user_id)


def present(villager: Villager, actor: User | None) -> VillagerView:
    """The villager as `actor` may see them: in full (VILLAGER_RIGHTS view) or masked."""
    village = villager.village.short_name if villager.village is not None else ""
    if VillagerRight.VIEW in authz.villager_rights(actor, villager.point, villager.user_id):
        return VillagerView(
            id=villager.id,
            name=villager.name,
            phone=villager.phone,
            village_name=village,
            point_id=villager.point_id,
            full=True,
            notes=villager.notes,
            consent_method=villager.consent_method.value,
            consented_at=villager.consented_at,
            consent_agent_id=villager.consent_agent_id,
            linked=villager.user_id is not None,
        )
    return VillagerView(
        id=villager.id,
        name=mask_name(villager.name),
        phone=mask_phone(villager.phone),
        village_name=village,
        point_id=villager.point_id,
        full=False,
    )


def link_on_register(session: Session, user: User) -> list[Villager]:
    """Link the unlinked villagers carrying the new account's phone and display name (the
    caller commits). Others sharing the family phone under other names stay unlinked."""
    name = (user.display_name or "").strip()
    if not name:
        return []
    found = list(
        session.scalars(
            select(Villager).where(
                Villager.phone == user.phone, Villager.name == name, Villager.user_id.is_(None)
            )
        )
    )
    for villager in found:
        villager.user_id = user.id
    return found
