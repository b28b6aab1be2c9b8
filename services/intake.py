"""Produce intake (the first kilometer's hand-in): the receiving agent at the seller's home point
(or county staff at the county service center) weighs, grades and photographs a sub-order's
goods line by line; that record is the hand-in. The seller never marks goods handed in: this is
the only way a sub-order reaches HANDED_IN (services/orders/manage.py has no other).

Who. `standings` (authz.INTAKE_ACTIONS): the agent of the seller's home point, or staff of the
seller's county, receive; nobody receives goods they sell, bought or placed. The seller, the
buyer and admins see the result.

What is charged. A product is sold by weight when its unit is a weight (斤 or 公斤: the catalog's
`UNIT_WEIGHT_G`; no other mark exists): its line is priced by the weighed weight, unit price per
unit weight × weighed grams, rounded down to the fen, never above the accepted quantity's price
(never above what was ordered). Any other line is priced by the accepted quantity. A line graded
不合格 (REJECTED), or with nothing accepted, costs nothing. An accepted line costs at least one fen.
Grades other than 不合格 do not change the price.

Bad weights. A weighed weight must be above zero for an accepted line and at most
MAX_WEIGHT_FACTOR (3) × the line's ordered net weight: ten times the order is a typo, refused
with the field's error and nothing written.

The money. What the buyer no longer pays goes back in the same use case:
* a pre-sale's authorisation (captured by hand at hand-in) is captured for less
  (`payments.capture(amounts=)`), or released whole when nothing was accepted;
* anything else is refunded: the difference by a partial refund (the sub-order moves on, handed
  in), everything when nothing was accepted (the sub-order is refunded and ends there).
Never more than was authorised or paid is taken.

One transaction, one key. The intake, its lines, its lots, the sub-order's move and the refund
row (or the capture plan: each sub-order's released part) are written in one transaction under
the request's idempotency key, with the sub-order's row locked; the gateway is called after the
commit, as capture and refund_sub_order do (no row lock is held while the gateway thinks). The
same key again returns the first intake and finishes its money if the gateway failed then; another
key finds the sub-order handed in already.

Lots. Every accepted line becomes one lot (domain/lots.py) with an unguessable trace code (16
base32 characters, 80 random bits), its origin node, sub-order and line: what the logistics legs
move. `trace` is the public view of a lot: product, origin village and town, grade, intake date
and point, nothing personal.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, lazyload

from domain import (
    Division,
    Grade,
    Intake,
    IntakeLine,
    IntakePhoto,
    Lot,
    Node,
    NodeKind,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStatus,
    Role,
    SellerProfile,
    SubOrder,
    Unit,
    User,
    clock,
)
from services import authz, media, places
from services.authz import IntakeAction, IntakeStanding, Party
from services.catalog.common import UNIT_WEIGHT_G
from services.catalog.consents import active_consent
from services.catalog.parsing import _plain_number
from services.errors import Conflict, NotFound, ServiceError, ValidationError
from services.i18n import _
from services.logistics import network, scans
from services.logistics import trace as lot_chain
from services.orders import states
from services.orders.checkout import check_idempotency_key
from services.payments import service as payments
from services.payments.gateway import GatewayError, PaymentGateway

log = logging.getLogger(__name__)

S = OrderStatus
# A weighed weight above this many times the line's ordered net weight is refused as a typo.
MAX_WEIGHT_FACTOR = 3
# What the form takes: kg with up to 3 decimals (whole grams), or 斤 for a line sold in 斤.
_WEIGHT_RE = re.compile(r"^[0-9]{1,7}(?:\.[0-9]{1,3})?$", re.ASCII)
CODE_BYTES = 10  # 80 bits: 16 base32 characters
_CODE_RE = re.compile(r"^[A-Z2-7]{16}$", re.ASCII)
MAX_QUANTITY = 1_000_000


class AlreadyReceived(Conflict):
    code = "already_received"

    @classmethod
    def default_message(cls) -> Any:
        return _("This order was already received at the point.")


class NotReceivable(Conflict):
    code = "not_receivable"

    @classmethod
    def default_message(cls) -> Any:
        return _("Only an order the seller accepted can be received.")


# --- who ----------------------------------------------------------------------------------------


def sold_by_weight(unit: Unit | str) -> bool:
    """Whether a line is charged for its weighed weight: its unit is a weight (斤, 公斤)."""
    try:
        return Unit(str(unit)) in UNIT_WEIGHT_G
    except ValueError:
        return False


def _is_buyer_of(actor: User, order: Order) -> bool:
    return actor.id in (order.buyer_id, order.placed_by_id)


def standings(session: Session, actor: User | None, sub: SubOrder) -> set[IntakeStanding]:
    """How `actor` stands to the intake of `sub` (empty: none of their business). An agent who
    runs the farmer's shop under a consent still receives at the point: the weighing is the
    point's; only the seller themself and the buyer never receive."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return set()
    found: set[IntakeStanding] = set()
    if _is_buyer_of(actor, sub.order):
        found.add(IntakeStanding.BUYER)
    if actor.id == sub.seller_id or active_consent(session, actor, sub.seller_id) is not None:
        found.add(IntakeStanding.SELLER)
    if authz.is_admin(actor):
        found.add(IntakeStanding.ADMIN)
    if IntakeStanding.BUYER in found or actor.id == sub.seller_id:
        return found
    profile = session.get(SellerProfile, sub.seller_id)
    if profile is None:
        return found
    if profile.home_point_id is not None and profile.home_point_id in authz.node_ids(actor, Role.AGENT):
        found.add(IntakeStanding.RECEIVING_AGENT)
    if profile.county_code and profile.county_code in authz.staff_county_codes(actor):
        found.add(IntakeStanding.COUNTY_STAFF)
    return found


def may_receive(session: Session, actor: User | None, sub: SubOrder) -> bool:
    """Whether `actor` may record this sub-order's intake now (the hand-in button)."""
    return sub.status == S.ACCEPTED and authz.may_intake(IntakeAction.RECEIVE, standings(session, actor, sub))


def _receivers_scope(actor: User) -> Any:
    """The sellers whose goods `actor` receives (SQL): home point theirs, or county theirs."""
    points = authz.node_ids(actor, Role.AGENT)
    counties = authz.staff_county_codes(actor)
    if not (points or counties):
        raise authz.Forbidden()
    return select(SellerProfile.user_id).where(
        or_(SellerProfile.home_point_id.in_(points), SellerProfile.county_code.in_(counties))
    )


def _find_sub(session: Session, number: Any, *, lock: bool = False) -> SubOrder:
    stmt = select(SubOrder).where(SubOrder.number == str(number)[:40])
    if lock:
        stmt = stmt.with_for_update(of=SubOrder).execution_options(populate_existing=True)
    sub = session.scalar(stmt)
    if sub is None:
        raise NotFound(_("Order not found."))
    return sub


def _receivable(session: Session, actor: User | None, number: Any) -> tuple[User, SubOrder]:
    """The sub-order `actor` receives: anyone else's is not found; its seller or buyer (who see
    it) are refused."""
    actor = authz.require_user(actor)
    sub = _find_sub(session, number)
    found = standings(session, actor, sub)
    if not authz.may_intake(IntakeAction.RECEIVE, found):
        if found:
            raise authz.Forbidden()
        raise NotFound(_("Order not found."))
    return actor, sub


# --- lists ----------------------------------------------------------------------------------------


def _to_receive(actor: User) -> Select[tuple[SubOrder]]:
    """Accepted sub-orders of the sellers whose goods the actor receives, not received yet,
    never their own (as seller, buyer or placer)."""
    return (
        select(SubOrder)
        .join(Order)
        .where(
            SubOrder.status == S.ACCEPTED,
            SubOrder.seller_id.in_(_receivers_scope(actor)),
            ~select(Intake.id).where(Intake.sub_order_id == SubOrder.id).exists(),
            SubOrder.seller_id != actor.id,
            Order.buyer_id != actor.id,
            Order.placed_by_id != actor.id,
        )
    )


def to_receive(session: Session, actor: User | None, *, limit: int = 100) -> list[SubOrder]:
    """Produce to receive (packed ones first, then the oldest)."""
    actor = authz.require_user(actor)
    stmt = _to_receive(actor).order_by(SubOrder.ready_at.is_(None), SubOrder.id).limit(limit)
    return list(session.scalars(stmt))


def count_to_receive(session: Session, actor: User | None) -> int:
    """How many sub-orders wait for the actor's intake (0 for anyone who receives nothing)."""
    try:
        stmt = _to_receive(authz.require_user(actor)).with_only_columns(func.count(SubOrder.id))
    except authz.Forbidden:
        return 0
    return int(session.scalar(stmt) or 0)


def received(session: Session, actor: User | None, *, limit: int = 50) -> list[Intake]:
    """Intakes recorded by the actor or at their points, newest first."""
    actor = authz.require_user(actor)
    points = authz.node_ids(actor, Role.AGENT)
    if not points and not authz.staff_county_codes(actor):
        raise authz.Forbidden()
    stmt = (
        select(Intake)
        .where(or_(Intake.received_by_id == actor.id, Intake.node_id.in_(points)))
        .order_by(Intake.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt).unique())


def seller_origin(session: Session, sub: SubOrder) -> list[Division]:
    """The seller's home village, city → county → town → village, for the lists."""
    profile = session.get(SellerProfile, sub.seller_id)
    return places.division_chain(profile.division) if profile is not None else []


def receivable_sub_order(session: Session, actor: User | None, number: Any) -> SubOrder:
    """The sub-order for the intake form (any state: the page says when it is done or closed)."""
    return _receivable(session, actor, number)[1]


def intake_of(session: Session, sub: SubOrder) -> Intake | None:
    return session.scalar(select(Intake).where(Intake.sub_order_id == sub.id))


def visible_intake(session: Session, actor: User | None, sub: SubOrder) -> Intake | None:
    """The intake of `sub` for whoever may see it (seller, buyer, receiver, admin); else None."""
    if not authz.may_intake(IntakeAction.VIEW, standings(session, actor, sub)):
        return None
    return intake_of(session, sub)


# --- photos ---------------------------------------------------------------------------------------


def upload_photo(
    session: Session,
    storage: media.Storage,
    actor: User | None,
    data: bytes,
    *,
    max_bytes: int = media.MAX_UPLOAD_BYTES,
) -> IntakePhoto:
    """A photo taken at the intake (checked and re-encoded by services.media), kept for its
    uploader to attach to an intake line. Files first, then the row; if the row fails, the files go."""
    actor = authz.require_user(actor)
    if not (authz.node_ids(actor, Role.AGENT) or authz.staff_county_codes(actor)):
        raise authz.Forbidden()
    image = media.process_upload(data, max_bytes=max_bytes)
    key = media.new_photo_key()
    saved: list[str] = []
    try:
        for v in image.variants:
            k = media.variant_key(key, v.width, v.ext)
            storage.save(k, v.data, v.content_type)
            saved.append(k)
        photo = IntakePhoto(key=key, width=image.width, height=image.height, uploaded_by_id=actor.id)
        session.add(photo)
        session.commit()
    except BaseException:
        session.rollback()
        for k in saved:
            try:
                storage.delete(k)
            except OSError:
                log.exception("could not remove %s after a failed upload", k)
        raise
    return photo


# --- the input --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    """One order line as the receiver reports it. `weighed_g`: whole grams (the API), or the
    text typed on the page (in 斤 for a line sold in 斤, else kg: `parse_weight`); None: not
    weighed (only for a line with nothing accepted). `accepted_quantity` None: all that was
    ordered. `photo_id`: an IntakePhoto the receiver uploaded, or None."""

    line_id: int
    weighed_g: Any
    grade: Any
    accepted_quantity: Any = None
    photo_id: Any = None


def parse_weight(raw: Any, unit: Unit | str, field: str) -> int | None:
    """A weight typed on the form as whole grams: in 斤 for a line sold in 斤, else in kg, up to
    3 decimals ("4.35", "４.３５", "4.35kg"); None when left empty."""
    text = _plain_number(str(raw) if raw is not None else "")
    for word in ("公斤", "kg", "KG", "千克", "斤"):
        text = text.removesuffix(word)
    if not text:
        return None
    factor = 500 if str(unit) == Unit.JIN.value else 1000
    msg = (
        _("Enter the weight in jin, such as 9.5.")
        if factor == 500
        else _("Enter the weight in kg, such as 4.35.")
    )
    if not _WEIGHT_RE.match(text):
        raise ValidationError(msg, field_errors={field: [msg]})
    try:
        grams = (Decimal(text) * factor).to_integral_value(rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValidationError(msg, field_errors={field: [msg]}) from None
    return int(grams)


def _whole(raw: Any, field: str, most: int, message: Any) -> int:
    if isinstance(raw, bool):
        raise ValidationError(message, field_errors={field: [message]})
    if isinstance(raw, str):
        text = _plain_number(raw)
        raw = int(text) if text.isdigit() and text.isascii() and len(text) <= 9 else None
    if not isinstance(raw, int) or not 0 <= raw <= most:
        raise ValidationError(message, field_errors={field: [message]})
    return raw


def _grade(raw: Any, field: str) -> Grade:
    try:
        return Grade(str(raw))
    except ValueError:
        msg = _("Choose a grade from the list.")
        raise ValidationError(msg, field_errors={field: [msg]}) from None


def line_charge(line: OrderLine, weighed_g: int, grade: Grade, accepted: int) -> int:
    """What an order line costs the buyer as received (see the module's docstring)."""
    if grade == Grade.REJECTED or accepted == 0:
        return 0
    # At what the buyer paid for the line (after campaign discounts), spread evenly over its units.
    by_count = line.paid_fen * accepted // line.quantity
    if sold_by_weight(line.unit):
        by_weight = line.paid_fen * weighed_g // (line.net_weight_g * line.quantity)
        return max(1, min(by_count, by_weight))
    return by_count


@dataclass
class _Line:
    order_line: OrderLine
    weighed_g: int
    grade: Grade
    accepted: int
    charged_fen: int
    photo: IntakePhoto | None


def _checked_lines(session: Session, actor: User, sub: SubOrder, given: Sequence[Any]) -> list[_Line]:
    """Every order line of the sub-order reported once, each value in its bounds; field errors
    (weight-<line id>, grade-…, quantity-…, photo-…) otherwise, all of them at once."""
    by_id = {line.id: line for line in sub.lines}
    inputs: dict[int, LineInput] = {}
    msg = _("Report each line of this order once.")
    for item in given if isinstance(given, Sequence) and not isinstance(given, str | bytes) else ():
        entry = _line_input(item)
        if entry is None or entry.line_id not in by_id or entry.line_id in inputs:
            raise ValidationError(msg, field_errors={"lines": [msg]})
        inputs[entry.line_id] = entry
    if set(inputs) != set(by_id):
        raise ValidationError(msg, field_errors={"lines": [msg]})
    errors: dict[str, list[Any]] = {}
    out: list[_Line] = []
    for line_id, line in by_id.items():
        entry = inputs[line_id]
        try:
            grade = _grade(entry.grade, f"grade-{line_id}")
            accepted = (
                line.quantity
                if entry.accepted_quantity in (None, "")
                else _whole(
                    entry.accepted_quantity,
                    f"quantity-{line_id}",
                    line.quantity,
                    _("Enter a whole number from 0 to %(n)d.", n=line.quantity),
                )
            )
            if grade == Grade.REJECTED:
                accepted = 0
            weighed = entry.weighed_g
            if isinstance(weighed, str):
                weighed = parse_weight(weighed, line.unit, f"weight-{line_id}")
            ordered_g = line.net_weight_g * line.quantity
            most = MAX_WEIGHT_FACTOR * ordered_g
            if weighed is None and (accepted == 0):
                weighed = 0
            if isinstance(weighed, bool) or not isinstance(weighed, int) or weighed < 0:
                msg = _("Enter the weighed weight.")
                raise ValidationError(msg, field_errors={f"weight-{line_id}": [msg]})
            if weighed == 0 and accepted > 0:
                msg = _("The weight must be more than zero.")
                raise ValidationError(msg, field_errors={f"weight-{line_id}": [msg]})
            if weighed > most:
                msg = _(
                    "More than %(n)d times the %(kg)s kg ordered: check the scale and the figure.",
                    n=MAX_WEIGHT_FACTOR,
                    kg=f"{Decimal(ordered_g) / 1000:f}",
                )
                raise ValidationError(msg, field_errors={f"weight-{line_id}": [msg]})
            photo = _photo(session, actor, entry.photo_id, f"photo-{line_id}")
        except ValidationError as exc:
            for k, v in exc.field_errors.items():
                errors.setdefault(k, []).extend(v)
            continue
        out.append(_Line(line, weighed, grade, accepted, line_charge(line, weighed, grade, accepted), photo))
    if errors:
        first = next(iter(errors.values()))[0]
        raise ValidationError(first, field_errors=errors)
    return out


def _line_input(item: Any) -> LineInput | None:
    if isinstance(item, LineInput):
        entry = item
    elif isinstance(item, Mapping):
        line_id: Any = item.get("line_id")
        entry = LineInput(
            line_id=line_id,
            weighed_g=item.get("weighed_g"),
            grade=item.get("grade"),
            accepted_quantity=item.get("accepted_quantity"),
            photo_id=item.get("photo_id"),
        )
    else:
        return None
    found: Any = entry.line_id
    return entry if isinstance(found, int) and not isinstance(found, bool) else None


def _photo(session: Session, actor: User, raw: Any, field: str) -> IntakePhoto | None:
    if raw in (None, ""):
        return None
    photo = None
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw < 2**31:
        photo = session.get(IntakePhoto, raw)
    if photo is None or photo.uploaded_by_id != actor.id:
        msg = _("This photo is not one you took. Upload the photo again.")
        raise ValidationError(msg, field_errors={field: [msg]})
    return photo


# --- recording the intake -----------------------------------------------------------------------


def new_lot_code() -> str:
    return base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii")


def normal_code(raw: Any) -> str | None:
    """A trace code as typed or scanned (case, spaces and dashes aside); None if it is none."""
    text = re.sub(r"[\s-]", "", str(raw or ""))[:40].upper()
    return text if _CODE_RE.match(text) else None


def _receiving_node(session: Session, found: set[IntakeStanding], profile: SellerProfile) -> Node:
    """Where the goods come into the network: the seller's home point for its agent; for county
    staff, the county's service center (or, with none open, the seller's home point)."""
    if IntakeStanding.RECEIVING_AGENT in found and profile.home_point_id is not None:
        node = session.get(Node, profile.home_point_id)
        if node is not None:
            return node
    center = session.scalar(
        select(Node)
        .where(
            Node.kind == NodeKind.COUNTY_CENTER,
            Node.county_code == profile.county_code,
            Node.active.is_(True),
        )
        .order_by(Node.id)
        .limit(1)
    )
    if center is not None:
        return center
    if profile.home_point_id is not None:
        node = session.get(Node, profile.home_point_id)
        if node is not None:
            return node
    raise Conflict(_("There is no service point or county center to receive this seller's goods at."))


def _by_key(session: Session, actor: User, key: str) -> Intake | None:
    return session.scalar(
        select(Intake).where(Intake.received_by_id == actor.id, Intake.idempotency_key == key)
    )


def _write_intake(
    session: Session, actor: User, sub: SubOrder, lines: Sequence[Any], key: str, now: datetime
) -> Intake:
    """The intake's rows, the move and the refund row or capture plan, in the caller's
    transaction (the sub-order locked); ServiceError on bad input, the caller rolls back."""
    checked = _checked_lines(session, actor, sub, lines)
    found = standings(session, actor, sub)
    profile = session.get(SellerProfile, sub.seller_id)
    assert profile is not None  # a receiving standing comes from the profile
    node = _receiving_node(session, found, profile)
    order = sub.order
    payment = payments.payment_of(session, order)
    accepted = [c for c in checked if c.charged_fen > 0]
    goods = sum(c.charged_fen for c in checked)
    authorised = payment.status == PaymentStatus.REQUIRES_CAPTURE
    if authorised:
        # A pre-sale held on the card: take what the goods cost (and the shipping), release the
        # rest; nothing accepted: release it all.
        settlement = "capture" if accepted else "void"
        difference = sub.items_fen - goods if accepted else sub.total_fen
    else:
        # Paid: give back what is left above what the goods cost now (an earlier partial refund
        # counts), or all that is left when nothing was accepted.
        left = payments.refundable_fen(session, sub)
        difference = max(0, left - (goods + sub.shipping_fen)) if accepted else left
        settlement = "refund" if difference > 0 else "none"
    intake = Intake(
        sub_order_id=sub.id,
        node_id=node.id,
        received_by_id=actor.id,
        idempotency_key=key,
        goods_fen=goods,
        difference_fen=difference,
        settlement=settlement,
        received_at=now,
    )
    session.add(intake)
    session.flush()
    lots: list[Lot] = []
    for c in checked:
        row = IntakeLine(
            intake_id=intake.id,
            order_line_id=c.order_line.id,
            weighed_g=c.weighed_g,
            grade=c.grade,
            accepted_quantity=c.accepted,
            by_weight=sold_by_weight(c.order_line.unit),
            charged_fen=c.charged_fen,
            photo_id=c.photo.id if c.photo else None,
        )
        session.add(row)
        session.flush()
        if c.charged_fen > 0:
            lots.append(
                Lot(
                    code=new_lot_code(),
                    intake_id=intake.id,
                    intake_line_id=row.id,
                    sub_order_id=sub.id,
                    order_line_id=c.order_line.id,
                    product_id=c.order_line.product_id,
                    seller_id=sub.seller_id,
                    node_id=node.id,
                    weight_g=c.weighed_g,
                    grade=c.grade,
                    quantity=c.accepted,
                    photo_id=c.photo.id if c.photo else None,
                    received_at=now,
                    received_by_id=actor.id,
                )
            )
    session.add_all(lots)
    session.flush()
    lot_chain.record_received(session, lots)  # each lot's chain starts here
    details = {"intake": intake.id, "goods_fen": goods, "difference_fen": difference}
    if accepted:
        states.apply(session, sub, S.HANDED_IN, party=Party.STAFF, actor=actor, details=details, now=now)
        try:
            scans.start(session, sub, node, actor, now=now)  # its journey, the intake its first scan
        except network.NoRoute:
            # The network around it is not complete yet (no county center or DC open): the
            # parcel moves by the staff's buttons, as before shipments existed.
            log.info("sub-order %s: no route from %s, no shipment", sub.number, node.name)
        if authorised and difference:
            sub.released_fen = difference  # the capture plan, recorded before the gateway takes it
    elif settlement == "refund":
        # Nothing accepted: all the money goes back and the sub-order stops here.
        states.apply(
            session,
            sub,
            S.REFUND_REQUESTED,
            party=Party.SYSTEM,
            actor=actor,
            note="intake",
            details=details,
            now=now,
        )
    if settlement == "refund":
        refund = payments.new_refund(
            session,
            sub,
            difference,
            reason="intake: weighed, short or rejected" if accepted else "intake: nothing accepted",
            idempotency_key=f"intake-{sub.number}",
            actor=actor,
            now=now,
        )
        intake.refund_id = refund.id
    return intake


def record_intake(
    session: Session,
    gateway: PaymentGateway,
    actor: User | None,
    number: Any,
    lines: Sequence[Any],
    key: Any,
    *,
    now: datetime | None = None,
) -> Intake:
    """Record the hand-in of sub-order `number` at the point: weighed, graded, photographed line
    by line (`lines`: LineInput or mappings of its fields). See the module's docstring for what
    is charged and how the rest goes back. The same key again returns the first intake."""
    actor, sub = _receivable(session, actor, number)  # access before input
    key = check_idempotency_key(key)
    done = _by_key(session, actor, key)
    if done is not None:
        if done.sub_order_id != sub.id:
            raise Conflict(_("This form was already used for another order. Please reload the page."))
        return settle(session, gateway, done, first=False, now=now)
    now = now or clock.now()
    sub = _find_sub(session, sub.number, lock=True)
    done = _by_key(session, actor, key)  # the same request, let through while we waited
    if done is not None and done.sub_order_id == sub.id:
        session.commit()
        return settle(session, gateway, done, first=False, now=now)
    if intake_of(session, sub) is not None:
        session.rollback()
        raise AlreadyReceived()
    if sub.status != S.ACCEPTED:
        session.rollback()
        raise NotReceivable()
    try:
        written = _write_intake(session, actor, sub, lines, key, now)
    except ServiceError:
        session.rollback()  # nothing half-written, the row lock released
        raise
    try:
        session.commit()
    except IntegrityError:
        # A second submission raced this one: the first one's intake stands.
        session.rollback()
        again = _by_key(session, actor, key)
        if again is not None and again.sub_order_id == sub.id:
            return settle(session, gateway, again, first=False, now=now)
        raise AlreadyReceived() from None
    return settle(session, gateway, written, first=True, now=now)


def settle(
    session: Session, gateway: PaymentGateway, intake: Intake, *, first: bool, now: datetime | None = None
) -> Intake:
    """Move the intake's money at the gateway, after its commit; again (never twice) when an
    earlier try failed. A gateway failure leaves it recorded: the refund stays pending (the
    reconciliation job sends it again), the authorisation uncaptured (the same request again
    takes it)."""
    sub = intake.sub_order
    order = sub.order
    try:
        if intake.settlement in ("capture", "void"):
            payment = payments.payment_of(session, order)
            if payment.status == PaymentStatus.REQUIRES_CAPTURE:
                if intake.settlement == "void":
                    payments.void_authorisation(
                        session,
                        gateway,
                        order,
                        actor=intake.received_by,
                        note="intake: nothing accepted",
                        now=now,
                    )
                else:
                    amounts = (
                        {sub.id: sub.total_fen - intake.difference_fen} if intake.difference_fen else None
                    )
                    payments.capture(session, gateway, order, amounts=amounts, now=now)
        elif intake.settlement == "refund" and intake.refund is not None:
            payments.send_refund(session, gateway, intake.refund, first=first, now=now)
    except GatewayError:
        session.rollback()
        log.warning("intake %s: the gateway failed; retried later", intake.id, exc_info=True)
    session.refresh(intake)
    return intake


def settle_stale(
    session: Session, gateway: PaymentGateway, *, stale_after: timedelta, now: datetime | None = None
) -> int:
    """Finish the money of intakes whose capture (or release) the gateway missed and nobody sent
    again: a pre-sale's authorisation still held `stale_after` after its intake. Run by the
    reconcile-payments job; returns how many it settled (up to 100 a run)."""
    now = now or clock.now()
    stmt = (
        select(Intake)
        .join(SubOrder, SubOrder.id == Intake.sub_order_id)
        .join(Payment, Payment.order_id == SubOrder.order_id)
        .where(
            Intake.settlement.in_(("capture", "void")),
            Payment.status == PaymentStatus.REQUIRES_CAPTURE,
            Intake.received_at < now - stale_after,
        )
        .order_by(Intake.id)
        .limit(100)
    )
    settled = 0
    for found in list(session.scalars(stmt)):
        done = settle(session, gateway, found, first=False, now=now)
        if payments.payment_of(session, done.sub_order.order).status != PaymentStatus.REQUIRES_CAPTURE:
            settled += 1
    return settled


# --- lots and their trace ---------------------------------------------------------------------------


def get_lot(session: Session, actor: User | None, code: Any) -> Lot:
    """A lot in full for whoever may see its intake (receiver, seller, buyer, admin)."""
    actor = authz.require_user(actor)
    normal = normal_code(code)
    lot = session.scalar(select(Lot).where(Lot.code == normal)) if normal else None
    if lot is None or not authz.may_intake(IntakeAction.VIEW, standings(session, actor, lot.sub_order)):
        raise NotFound(_("No lot has this code."))
    return lot


@dataclass(frozen=True)
class Trace:
    """What anyone may read about a lot: no names, phones or orders."""

    code: str
    product: str
    category: str
    origin: list[Division]  # city → county → town → village of the product's origin
    grade: Grade
    weight_g: int
    quantity: int
    unit: str
    received_on: date  # China's calendar day of the intake
    point: str
    point_kind: str
    storage_class: str
    photo: IntakePhoto | None

    @property
    def village(self) -> str:
        return self.origin[-1].name if self.origin else ""

    @property
    def town(self) -> str:
        return self.origin[-2].name if len(self.origin) >= 2 else ""


def trace(session: Session, code: Any) -> Trace:
    """The public trace of a lot (no login): product, origin, grade, intake day and point."""
    normal = normal_code(code)
    # What the page shows, and nothing else of the lot's relations (a public page, read often).
    found = (
        select(Lot)
        .where(Lot.code == normal)
        .options(
            lazyload("*"),
            joinedload(Lot.product),
            joinedload(Lot.node),
            joinedload(Lot.photo),
            joinedload(Lot.intake_line).joinedload(IntakeLine.order_line),
        )
    )
    lot = session.scalar(found) if normal else None
    if lot is None:
        raise NotFound(_("No lot has this code."))
    product = lot.product
    line = lot.intake_line.order_line
    storage = session.scalar(select(SubOrder.storage_class).where(SubOrder.id == lot.sub_order_id))
    return Trace(
        code=lot.code,
        product=line.name,
        category=product.category.name,
        origin=places.division_chain(product.origin),
        grade=lot.grade,
        weight_g=lot.weight_g,
        quantity=lot.quantity,
        unit=line.unit.value,
        received_on=clock.local(lot.received_at).date(),
        point=lot.node.name,
        point_kind=lot.node.kind.value,
        storage_class=storage.value if storage is not None else "",
        photo=lot.photo,
    )
