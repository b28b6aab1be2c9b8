"""Running campaigns: admins create, edit, publish and cancel them and decide sellers' sign-ups;
sellers (and agents for consenting farmers) sign their products up with a campaign price, a
flash-sale quota and a per-buyer limit. Every change is checked whole before anything is written
and audited (audit_events, entity "campaign" / "campaign_item").

Edits by state (the state is computed from the clock, `Campaign.state`):
- draft and scheduled: anything;
- running: only the description, the banner, a later end, and a larger budget (buyers are paying
  the campaign's prices: its window start, rules, scope and funding stay as announced);
- ended and cancelled: nothing.

Overlaps. A product is in at most one campaign at any moment: a sign-up (pending or approved)
whose campaign's window overlaps that of another campaign the product is signed up to is
refused, and so is moving a campaign's window onto such an overlap. Two campaigns' 满减 and
first-order rules may overlap: the engine's stacking rules decide (services/orders/promotions.py).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import (
    MAX_STOCK,
    Campaign,
    CampaignItem,
    CampaignState,
    CampaignStatus,
    Category,
    CertificationKind,
    Division,
    DivisionLevel,
    Product,
    SignupStatus,
    TierBasisKind,
    User,
    clock,
)
from services import authz
from services.cash import parse_yuan_amount
from services.catalog import audit, freshness
from services.catalog.access import can_edit_product
from services.errors import Conflict, Forbidden, NotFound, ValidationError
from services.i18n import _
from services.orders import promotions as engine
from services.validation import check_text, id_or_none, parse_int

MAX_LIMIT = 999
MAX_BUDGET_FEN = 10**12
_TIER_RE = re.compile(r"满\s*([0-9]+(?:\.[0-9]{1,2})?)\s*减\s*([0-9]+(?:\.[0-9]{1,2})?)")
_LOCAL_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")


def _error(field_name: str, message: Any) -> ValidationError:
    return ValidationError(message, field_errors={field_name: [message]})


# --- parsing what a form or the API sends ------------------------------------------------------


def parse_local_time(raw: Any, field_name: str) -> datetime:
    """A moment typed in China's time ("2026-06-01T10:00:00", seconds optional) as UTC."""
    text = unicodedata.normalize("NFKC", str(raw or "")).strip()
    for fmt in _LOCAL_FORMATS:
        try:
            local = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return local.replace(tzinfo=clock.CHINA).astimezone(clock.UTC)
    raise _error(field_name, _("Enter a date and time, such as 2026-06-01 10:00:00."))


def parse_tiers(raw: Any) -> list[list[int]]:
    """满减 tiers typed as "满100减20, 满200减50" (yuan), or given as [[threshold_fen, off_fen], ...]."""
    if raw in (None, "", []):
        return []
    if isinstance(raw, list):
        try:
            tiers = [[int(t), int(o)] for t, o in raw]
        except (TypeError, ValueError):
            raise _error("tiers", _("Write the tiers as 满100减20, 满200减50.")) from None
    else:
        text = unicodedata.normalize("NFKC", str(raw)).replace("，", ",")
        found = _TIER_RE.findall(text)
        rest = _TIER_RE.sub("", text).replace(",", "").replace(";", "").strip()
        if not found or rest:
            raise _error("tiers", _("Write the tiers as 满100减20, 满200减50."))
        tiers = [[round(float(t) * 100), round(float(o) * 100)] for t, o in found]
    try:
        engine.TierOff("check", 0, tuple((t, o) for t, o in tiers))
    except ValidationError as exc:
        raise _error("tiers", exc.message) from None
    return tiers


@dataclass
class CampaignInput:
    """A campaign as typed (strings from a form, or values from the API)."""

    name: Any = ""
    description: Any = ""
    starts_at: Any = ""
    ends_at: Any = ""
    county_codes: Any = field(default_factory=list)
    category_ids: Any = field(default_factory=list)
    certified_only: Any = False
    gi_only: Any = False
    platform_percent: Any = "0"  # the platform's share of the 满减 and first-order discounts, 0..100
    price_platform_percent: Any = "0"  # its share of the sign-ups' campaign prices, 0..100
    budget_yuan: Any = "0"
    percent_off: Any = ""  # e.g. "10" for 10 % off (九折)
    tiers: Any = ""
    tier_basis: Any = TierBasisKind.SELLER.value
    first_order_off_yuan: Any = ""


def _list(raw: Any) -> list[str]:
    if raw in (None, ""):
        return []
    if isinstance(raw, str):
        return [part for part in re.split(r"[\s,，]+", raw) if part]
    return [str(v) for v in raw]


def _flag(raw: Any) -> bool:
    return raw in (True, "1", "true", "on", "yes", 1)


def clean(session: Session, data: CampaignInput) -> dict[str, Any]:
    """The campaign's fields, every one checked; all errors at once."""
    errors: dict[str, list[Any]] = {}
    values: dict[str, Any] = {}

    def attempt(name: str, fn: Any) -> None:
        try:
            values[name] = fn()
        except ValidationError as exc:
            errors.update(exc.field_errors or {name: [exc.message]})

    attempt("name", lambda: check_text(data.name, "name", max_len=60, required=True))
    attempt("description", lambda: check_text(data.description, "description", max_len=2000))
    attempt("starts_at", lambda: parse_local_time(data.starts_at, "starts_at"))
    attempt("ends_at", lambda: parse_local_time(data.ends_at, "ends_at"))
    attempt("county_codes", lambda: _counties(session, _list(data.county_codes)))
    attempt("category_ids", lambda: _categories(session, _list(data.category_ids)))
    values["certified_only"] = _flag(data.certified_only)
    values["gi_only"] = _flag(data.gi_only)
    attempt("platform_bps", lambda: _percent(data.platform_percent, "platform_bps"))
    attempt("price_platform_bps", lambda: _percent(data.price_platform_percent, "price_platform_bps"))
    attempt("budget_fen", lambda: parse_yuan_amount(data.budget_yuan or "0", "budget_fen", allow_zero=True))
    attempt(
        "percent_off_bps",
        lambda: parse_int(data.percent_off, "percent_off_bps", minimum=1, maximum=99) * 100
        if str(data.percent_off or "").strip()
        else None,
    )
    attempt("tiers", lambda: parse_tiers(data.tiers))
    attempt("tier_basis", lambda: _basis(data.tier_basis))
    attempt(
        "first_order_off_fen",
        lambda: parse_yuan_amount(data.first_order_off_yuan, "first_order_off_fen")
        if str(data.first_order_off_yuan or "").strip()
        else None,
    )
    if "starts_at" in values and "ends_at" in values and values["ends_at"] <= values["starts_at"]:
        errors["ends_at"] = [_("The end must be after the start.")]
    if values.get("budget_fen", 0) > MAX_BUDGET_FEN:
        errors["budget_fen"] = [_("The budget is too large.")]
    subsidised = values.get("platform_bps") or values.get("price_platform_bps")
    if subsidised and "budget_fen" in values and not values["budget_fen"]:
        errors["budget_fen"] = [_("A campaign the platform subsidises needs a subsidy budget.")]
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    return values


def _percent(raw: Any, field_name: str) -> int:
    """A share typed in whole percent (0..100) as basis points."""
    return parse_int(raw or "0", field_name, minimum=0, maximum=100) * 100


def _counties(session: Session, codes: list[str]) -> list[str]:
    if not codes:
        return []
    found = set(
        session.scalars(
            select(Division.code).where(Division.code.in_(codes), Division.level == DivisionLevel.COUNTY)
        )
    )
    if set(codes) - found:
        raise _error("county_codes", _("Choose counties of Guangdong."))
    return sorted(found)


def _categories(session: Session, raw: list[str]) -> list[int]:
    ids = [id_or_none(v) for v in raw]
    if any(v is None for v in ids):
        raise _error("category_ids", _("Choose categories from the list."))
    wanted = {int(v) for v in ids if v is not None}
    if not wanted:
        return []
    found = set(session.scalars(select(Category.id).where(Category.id.in_(wanted))))
    if wanted - found:
        raise _error("category_ids", _("Choose categories from the list."))
    return sorted(found)


def _basis(raw: Any) -> TierBasisKind:
    try:
        return TierBasisKind(str(raw or TierBasisKind.SELLER.value))
    except ValueError:
        raise _error("tier_basis", _("Choose per seller or across the campaign.")) from None


# --- campaigns --------------------------------------------------------------------------------


def get_campaign(session: Session, campaign_id: Any, *, lock: bool = False) -> Campaign:
    cid = id_or_none(campaign_id)
    campaign = None
    if cid is not None:
        stmt = select(Campaign).where(Campaign.id == cid)
        if lock:
            stmt = stmt.with_for_update()
        campaign = session.scalar(stmt)
    if campaign is None:
        raise NotFound(_("Campaign not found."))
    return campaign


def public_campaign(session: Session, campaign_id: Any) -> Campaign:
    """A campaign buyers may see: published (scheduled, running or ended), not cancelled."""
    campaign = get_campaign(session, campaign_id)
    if campaign.status != CampaignStatus.PUBLISHED:
        raise NotFound(_("Campaign not found."))
    return campaign


def _snapshot(campaign: Campaign) -> dict[str, Any]:
    return {
        "name": campaign.name,
        "description": campaign.description,
        "banner_key": campaign.banner_key,
        "status": campaign.status.value,
        "starts_at": campaign.starts_at.isoformat(),
        "ends_at": campaign.ends_at.isoformat(),
        "county_codes": list(campaign.county_codes),
        "category_ids": list(campaign.category_ids),
        "certified_only": campaign.certified_only,
        "gi_only": campaign.gi_only,
        "platform_bps": campaign.platform_bps,
        "price_platform_bps": campaign.price_platform_bps,
        "budget_fen": campaign.budget_fen,
        "percent_off_bps": campaign.percent_off_bps,
        "tiers": [list(t) for t in campaign.tiers],
        "tier_basis": campaign.tier_basis.value,
        "first_order_off_fen": campaign.first_order_off_fen,
    }


RUNNING_EDITABLE = {"description", "banner_key", "ends_at", "budget_fen"}


def create_campaign(session: Session, actor: User | None, data: CampaignInput) -> Campaign:
    actor = authz.require_campaigns(actor)
    values = clean(session, data)
    campaign = Campaign(created_by_id=actor.id, status=CampaignStatus.DRAFT, **values)
    session.add(campaign)
    session.flush()
    audit.record(session, actor, "campaign.create", "campaign", campaign.id, _snapshot(campaign))
    session.commit()
    return campaign


def update_campaign(
    session: Session,
    actor: User | None,
    campaign_id: Any,
    data: CampaignInput,
    *,
    now: datetime | None = None,
) -> Campaign:
    """Change a campaign: anything before it runs, only RUNNING_EDITABLE while it runs."""
    actor = authz.require_campaigns(actor)
    now = now or clock.now()
    campaign = get_campaign(session, campaign_id, lock=True)
    state = campaign.state(now)
    if state in (CampaignState.ENDED, CampaignState.CANCELLED):
        raise Conflict(_("This campaign is over and can no longer be changed."))
    values = clean(session, data)
    before = _snapshot(campaign)
    wanted = {k: v for k, v in values.items() if getattr(campaign, k) != v}
    if state == CampaignState.RUNNING:
        refused = sorted(set(wanted) - RUNNING_EDITABLE)
        if refused:
            raise ValidationError(
                _(
                    "While a campaign runs, only its description, banner, end and budget can change "
                    "(buyers are paying its prices)."
                ),
                field_errors={name: [_("Cannot change while the campaign runs.")] for name in refused},
            )
        if "ends_at" in wanted and wanted["ends_at"] < campaign.ends_at:
            raise _error("ends_at", _("While a campaign runs, its end can only move later."))
        if "budget_fen" in wanted and wanted["budget_fen"] < campaign.budget_fen:
            raise _error("budget_fen", _("While a campaign runs, its budget can only grow."))
    if "budget_fen" in wanted and wanted["budget_fen"] < campaign.subsidy_used_fen:
        raise _error("budget_fen", _("The budget cannot be less than the subsidy already used."))
    if {"starts_at", "ends_at"} & set(wanted):
        _check_no_overlap(
            session,
            campaign,
            values.get("starts_at", campaign.starts_at),
            values.get("ends_at", campaign.ends_at),
        )
    for key, value in wanted.items():
        setattr(campaign, key, value)
    session.flush()
    changes = audit.diff(before, _snapshot(campaign))
    if changes:
        audit.record(session, actor, "campaign.update", "campaign", campaign.id, changes)
        _bump(session, "campaign changed")
    session.commit()
    return campaign


def publish(
    session: Session, actor: User | None, campaign_id: Any, *, now: datetime | None = None
) -> Campaign:
    """Announce a draft: sellers may sign up, and it runs inside its window."""
    actor = authz.require_campaigns(actor)
    now = now or clock.now()
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status == CampaignStatus.PUBLISHED:
        return campaign
    if campaign.status != CampaignStatus.DRAFT:
        raise Conflict(_("Only a draft campaign can be published."))
    if campaign.ends_at <= now:
        raise _error("ends_at", _("This campaign's window is already over. Move its end first."))
    campaign.status = CampaignStatus.PUBLISHED
    audit.record(
        session, actor, "campaign.publish", "campaign", campaign.id, {"status": ["draft", "published"]}
    )
    _bump(session, "campaign published")
    session.commit()
    return campaign


def cancel(
    session: Session, actor: User | None, campaign_id: Any, reason: Any, *, now: datetime | None = None
) -> Campaign:
    """Stop a campaign that has not ended. Orders already placed keep the prices they got."""
    actor = authz.require_campaigns(actor)
    now = now or clock.now()
    reason_text = check_text(reason, "reason", max_len=200, required=True)
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status == CampaignStatus.CANCELLED:
        return campaign
    if campaign.state(now) == CampaignState.ENDED:
        raise Conflict(_("This campaign is over and can no longer be changed."))
    before = campaign.status.value
    campaign.status = CampaignStatus.CANCELLED
    campaign.cancel_reason = reason_text
    audit.record(
        session,
        actor,
        "campaign.cancel",
        "campaign",
        campaign.id,
        {"status": [before, "cancelled"], "reason": [None, reason_text]},
    )
    _bump(session, "campaign cancelled")
    session.commit()
    return campaign


def list_campaigns(session: Session, actor: User | None) -> list[Campaign]:
    authz.require_campaigns(actor)
    return list(session.scalars(select(Campaign).order_by(Campaign.starts_at.desc(), Campaign.id.desc())))


def public_campaigns(session: Session, now: datetime | None = None) -> list[Campaign]:
    """Published campaigns not over yet (running first, then by start)."""
    now = now or clock.now()
    rows = session.scalars(
        select(Campaign)
        .where(Campaign.status == CampaignStatus.PUBLISHED, Campaign.ends_at > now)
        .order_by(Campaign.starts_at, Campaign.id)
    )
    return list(rows)


# --- sign-ups -----------------------------------------------------------------------------------


def in_scope(campaign: Campaign, product: Product) -> bool:
    """Whether the product may join: its county, its category (or the category's parent), its
    certificates, as the campaign's scope says (empty lists: any)."""
    if campaign.county_codes and product.county_code not in campaign.county_codes:
        return False
    if campaign.category_ids:
        category = product.category
        ids = {product.category_id} | ({category.parent_id} if category and category.parent_id else set())
        if not ids & set(campaign.category_ids):
            return False
    if campaign.certified_only and not product.certifications:
        return False
    gi = any(c.kind == CertificationKind.GEOGRAPHICAL_INDICATION for c in product.certifications)
    return gi or not campaign.gi_only


def _check_no_overlap(session: Session, campaign: Campaign, starts_at: datetime, ends_at: datetime) -> None:
    """No product of this campaign may be in another campaign whose window overlaps this one."""
    mine = select(CampaignItem.product_id).where(
        CampaignItem.campaign_id == campaign.id,
        CampaignItem.status.in_((SignupStatus.PENDING, SignupStatus.APPROVED)),
    )
    clash = _overlapping(session, mine, campaign.id, starts_at, ends_at)
    if clash is not None:
        raise _error(
            "starts_at",
            _("%(name)s is already in campaign %(other)s at that time.", name=clash[0], other=clash[1]),
        )


def _overlapping(
    session: Session, product_ids: Any, campaign_id: int, starts_at: datetime, ends_at: datetime
) -> tuple[str, str] | None:
    row = session.execute(
        select(Product.name, Campaign.name)
        .join(CampaignItem, CampaignItem.product_id == Product.id)
        .join(Campaign, Campaign.id == CampaignItem.campaign_id)
        .where(
            CampaignItem.product_id.in_(product_ids),
            CampaignItem.campaign_id != campaign_id,
            CampaignItem.status.in_((SignupStatus.PENDING, SignupStatus.APPROVED)),
            Campaign.status != CampaignStatus.CANCELLED,
            Campaign.starts_at < ends_at,
            Campaign.ends_at > starts_at,
        )
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


@dataclass
class SignupInput:
    campaign_price_yuan: Any = ""
    quota: Any = ""
    per_buyer_limit: Any = ""


def _clean_signup(campaign: Campaign, product: Product, data: SignupInput) -> dict[str, Any]:
    errors: dict[str, list[Any]] = {}
    values: dict[str, Any] = {"campaign_price_fen": None, "quota": None, "per_buyer_limit": None}
    if str(data.campaign_price_yuan or "").strip():
        try:
            price = parse_yuan_amount(data.campaign_price_yuan, "campaign_price_fen", allow_zero=True)
            engine.check_campaign_price(product.price_fen, price)
            if price == product.price_fen:
                raise _error("campaign_price_fen", _("A campaign price must be below the list price."))
            values["campaign_price_fen"] = price
        except ValidationError as exc:
            errors["campaign_price_fen"] = (exc.field_errors or {}).get("campaign_price_fen") or [exc.message]
    elif not campaign.percent_off_bps:
        errors["campaign_price_fen"] = [_("Enter the campaign price.")]
    for name, top in (("quota", MAX_STOCK), ("per_buyer_limit", MAX_LIMIT)):
        raw = getattr(data, name)
        if str(raw or "").strip():
            try:
                values[name] = parse_int(raw, name, minimum=1, maximum=top)
            except ValidationError as exc:
                errors.update(exc.field_errors or {name: [exc.message]})
    if errors:
        raise ValidationError(_("Please correct the marked fields."), field_errors=errors)
    return values


def may_sign_up(session: Session, actor: User | None, product: Product) -> bool:
    """A product's seller, or an agent for a consenting farmer (not an admin: admins decide)."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return False
    standings: set[authz.CampaignStanding] = set()
    if actor.id == product.seller_id:
        standings.add(authz.CampaignStanding.SELLER)
    elif can_edit_product(session, actor, product) and not authz.is_admin(actor):
        standings.add(authz.CampaignStanding.AGENT_FOR_SELLER)
    return authz.may_campaign(authz.CampaignAction.SIGN_UP, standings)


def sign_up(
    session: Session,
    actor: User | None,
    campaign_id: Any,
    product_id: Any,
    data: SignupInput,
    *,
    now: datetime | None = None,
) -> CampaignItem:
    """Sign a product up (again, after a rejection or withdrawal): pending the admins' decision."""
    actor = authz.require_user(actor)
    now = now or clock.now()
    campaign = get_campaign(session, campaign_id, lock=True)
    pid = id_or_none(product_id)
    product = session.get(Product, pid) if pid is not None else None
    if product is None:
        raise NotFound(_("This product is not on sale."))
    if not may_sign_up(session, actor, product):
        raise Forbidden(_("You cannot sign up this product."))
    if campaign.status != CampaignStatus.PUBLISHED or campaign.state(now) not in (
        CampaignState.SCHEDULED,
        CampaignState.RUNNING,
    ):
        raise Conflict(_("This campaign is not open for sign-ups."))
    if not in_scope(campaign, product):
        raise _error("product_id", _("This product is outside the campaign's scope."))
    values = _clean_signup(campaign, product, data)
    clash = _overlapping(session, [product.id], campaign.id, campaign.starts_at, campaign.ends_at)
    if clash is not None:
        raise _error(
            "product_id",
            _("%(name)s is already in campaign %(other)s at that time.", name=clash[0], other=clash[1]),
        )
    item = session.scalar(
        select(CampaignItem).where(
            CampaignItem.campaign_id == campaign.id, CampaignItem.product_id == product.id
        )
    )
    if item is not None and item.status in (SignupStatus.PENDING, SignupStatus.APPROVED):
        raise Conflict(_("This product is already signed up."))
    if item is None:
        item = CampaignItem(campaign_id=campaign.id, product_id=product.id, seller_id=product.seller_id)
        session.add(item)
    item.status = SignupStatus.PENDING
    item.reason = ""
    item.signed_up_by_id = actor.id
    item.decided_by_id = None
    item.decided_at = None
    item.created_at = now
    for key, value in values.items():
        setattr(item, key, value)
    session.flush()
    audit.record(
        session,
        actor,
        "campaign_item.sign_up",
        "campaign_item",
        item.id,
        {k: [None, v] for k, v in values.items()},
    )
    session.commit()
    return item


def withdraw(
    session: Session, actor: User | None, item_id: Any, *, now: datetime | None = None
) -> CampaignItem:
    """Take a sign-up back before the campaign runs (while it runs, buyers count on its price)."""
    actor = authz.require_user(actor)
    now = now or clock.now()
    item = _item(session, item_id)
    if not may_sign_up(session, actor, item.product):
        raise Forbidden(_("You cannot sign up this product."))
    if item.status == SignupStatus.WITHDRAWN:
        return item
    if item.status == SignupStatus.APPROVED and item.campaign.state(now) == CampaignState.RUNNING:
        raise Conflict(_("The campaign is running: its products stay in it until it ends."))
    before = item.status.value
    item.status = SignupStatus.WITHDRAWN
    audit.record(
        session, actor, "campaign_item.withdraw", "campaign_item", item.id, {"status": [before, "withdrawn"]}
    )
    _bump(session, "sign-up withdrawn")
    session.commit()
    return item


def decide(
    session: Session,
    actor: User | None,
    item_id: Any,
    approve: bool,
    reason: Any = "",
    *,
    now: datetime | None = None,
) -> CampaignItem:
    """Approve a pending sign-up (its price is checked against today's list price again), or
    reject it with a reason the seller sees."""
    actor = authz.require_campaigns(actor)
    now = now or clock.now()
    item = _item(session, item_id, lock=True)
    reason_text = check_text(reason, "reason", max_len=200, required=not approve)
    target = SignupStatus.APPROVED if approve else SignupStatus.REJECTED
    if item.status == target:
        return item
    if item.status != SignupStatus.PENDING:
        raise Conflict(_("Only a pending sign-up can be decided."))
    if item.campaign.state(now) in (CampaignState.ENDED, CampaignState.CANCELLED):
        raise Conflict(_("This campaign is over and can no longer be changed."))
    if approve and item.campaign_price_fen is not None and item.campaign_price_fen >= item.product.price_fen:
        raise _error("campaign_price_fen", _("A campaign price must be below the list price."))
    item.status = target
    item.reason = reason_text
    item.decided_by_id = actor.id
    item.decided_at = now
    audit.record(
        session,
        actor,
        "campaign_item.approve" if approve else "campaign_item.reject",
        "campaign_item",
        item.id,
        {"status": ["pending", target.value], "reason": [None, reason_text]},
    )
    _bump(session, "sign-up decided")
    session.commit()
    return item


def _item(session: Session, item_id: Any, *, lock: bool = False) -> CampaignItem:
    iid = id_or_none(item_id)
    item = None
    if iid is not None:
        stmt = select(CampaignItem).where(CampaignItem.id == iid)
        if lock:
            stmt = stmt.with_for_update(of=CampaignItem)
        item = session.scalar(stmt)
    if item is None:
        raise NotFound(_("Sign-up not found."))
    return item


def seller_items(session: Session, actor: User | None, seller_id: int | None = None) -> list[CampaignItem]:
    """The sign-ups of the actor's products (or of a consenting farmer's, for an agent)."""
    actor = authz.require_user(actor)
    owner = seller_id or actor.id
    rows = list(
        session.scalars(
            select(CampaignItem).where(CampaignItem.seller_id == owner).order_by(CampaignItem.id.desc())
        )
    )
    return [item for item in rows if may_sign_up(session, actor, item.product)]


def approved_items(session: Session, campaign: Campaign) -> list[CampaignItem]:
    return list(
        session.scalars(
            select(CampaignItem)
            .where(CampaignItem.campaign_id == campaign.id, CampaignItem.status == SignupStatus.APPROVED)
            .order_by(CampaignItem.id)
        )
    )


def _bump(session: Session, reason: str) -> None:
    """A campaign change moves prices on the shelf: the shop's page cache must not serve old ones."""
    freshness.bump(session, reason)


@freshness.register_boundaries
def campaign_boundaries(session: Session, now: datetime) -> list[datetime]:
    """The starts and ends of published campaigns not over yet: the shop's cached pages change
    at each (a campaign's price shows at the second it starts), without any write."""
    rows = session.execute(
        select(Campaign.starts_at, Campaign.ends_at).where(
            Campaign.status == CampaignStatus.PUBLISHED, Campaign.ends_at > now
        )
    )
    return sorted({moment for pair in rows for moment in pair})
