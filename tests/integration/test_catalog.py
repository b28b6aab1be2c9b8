"""The catalog's services on a real database: seller profiles, listings and their rules, agents
listing for farmers under a consent record (and only then), enrollment by SMS code, one-tap
price and stock, status moves, drafts, visibility and the audit trail. Bad input writes nothing."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import (
    MAX_PRICE_FEN,
    MAX_STOCK,
    AuditEvent,
    CategoryFlow,
    CertificationKind,
    ListingConsent,
    Product,
    ProductStatus,
    Role,
    SellerKind,
    SellerProfile,
    SmsMessage,
    StorageClass,
    Unit,
    User,
    clock,
)
from services import accounts, catalog, places
from services.accounts import AuthPolicy
from services.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationError
from services.sms import OutboxSmsGateway
from tests.conftest import count, latest_sms_code
from tests.factories import (
    COUNTY,
    World,
    build_world,
    consent,
    listing,
    row,
)


@pytest.fixture()
def world(session, admin, make_user) -> World:  # type: ignore[no-untyped-def]
    return build_world(session, admin, make_user)


def events(session: Session, product_id: int) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "product", AuditEvent.entity_id == str(product_id))
            .order_by(AuditEvent.id)
        )
    )


# --- seller profiles --------------------------------------------------------------------------------


class TestSellerProfile:
    def test_a_farmer_sells_from_their_village_and_its_point(self, session, world):
        profile = session.get(SellerProfile, world.farmer.id)
        assert profile.kind == SellerKind.FARMER
        assert profile.division_code == world.village.code
        assert profile.county_code == COUNTY
        assert profile.home_point_id == world.point.id

    def test_a_farmer_must_choose_a_village_not_a_county(self, session, make_user):
        farmer = make_user(Role.FARMER)
        with pytest.raises(ValidationError) as info:
            catalog.save_seller_profile(session, farmer, shop_name="老李", division_code=COUNTY)
        assert "division_code" in info.value.field_errors
        assert session.get(SellerProfile, farmer.id) is None

    def test_html_in_the_shop_name_is_refused_and_the_old_profile_stays(self, session, world):
        with pytest.raises(ValidationError) as info:
            catalog.save_seller_profile(
                session,
                world.farmer,
                shop_name="<script>alert(1)</script>",
                division_code=world.neighbour.code,
            )
        assert "shop_name" in info.value.field_errors
        session.expire_all()
        profile = session.get(SellerProfile, world.farmer.id)
        assert (profile.shop_name, profile.division_code) == ("柚农老李", world.village.code)

    def test_buyers_cannot_sell(self, session, world):
        with pytest.raises(Forbidden):
            catalog.save_seller_profile(
                session, world.buyer, shop_name="买家", division_code=world.village.code
            )

    def test_a_change_is_audited(self, session, world):
        catalog.save_seller_profile(
            session, world.farmer, shop_name="老李的柚园", division_code=world.village.code, intro="三代种柚"
        )
        event = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "seller_profile")
            .order_by(AuditEvent.id.desc())
        ).first()
        assert event.actor_id == world.farmer.id
        assert event.changes["shop_name"] == ["柚农老李", "老李的柚园"]


# --- listing ----------------------------------------------------------------------------------------


class TestListingAProduct:
    def test_a_farmer_lists_and_is_the_seller_of_record(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        assert product.seller_id == product.listed_by_id == world.farmer.id
        assert product.consent_id is None
        assert product.status == ProductStatus.ACTIVE and product.published_at is not None
        assert product.origin_code == world.village.code and product.county_code == COUNTY
        assert product.net_weight_g == 500  # a 斤
        (event,) = events(session, product.id)
        assert (event.action, event.actor_id) == ("create", world.farmer.id)
        assert event.changes["price_fen"] == 680

    @pytest.mark.parametrize(("unit", "grams"), [(Unit.JIN, 500), (Unit.KG, 1000)])
    def test_jin_and_kg_carry_their_weight(self, session, world, unit, grams):
        product = catalog.create_product(session, world.farmer, listing(world, unit=unit, net_weight_g=7))
        assert product.net_weight_g == grams

    @pytest.mark.parametrize("unit", [Unit.BOX, Unit.BAG, Unit.PIECE])
    def test_box_bag_and_piece_need_a_net_weight(self, session, world, unit):
        with pytest.raises(ValidationError) as info:
            catalog.create_product(session, world.farmer, listing(world, unit=unit))
        assert "net_weight_g" in info.value.field_errors
        product = catalog.create_product(session, world.farmer, listing(world, unit=unit, net_weight_g=5000))
        assert product.net_weight_g == 5000

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("price_fen", 0),
            ("price_fen", -100),
            ("price_fen", MAX_PRICE_FEN + 1),
            ("price_fen", 10**30),
            ("price_fen", 12.5),
            ("price_fen", "1250"),
            ("price_fen", True),
            ("stock", -1),
            ("stock", MAX_STOCK + 1),
            ("stock", 2.0),
            ("stock", None),
            ("net_weight_g", 0),
            ("net_weight_g", -5),
            ("net_weight_g", 10**9),
            ("name", ""),
            ("name", "柚" * 61),
            ("name", "<script>alert('x')</script>"),
            ("name", '<img src=x onerror="alert(1)">'),
            ("description", "<b>甜</b>"),
            ("description", "bad\x00byte"),
            ("category_id", 0),
            ("category_id", 10**12),
            ("unit", "ton"),
            ("storage_class", "warm"),
            ("origin_code", "99"),
            ("harvest_start", date(1900, 1, 1)),
            ("certifications", ((CertificationKind.ORGANIC, ""),)),
            ("certifications", (("halal", "123"),)),
        ],
    )
    def test_bad_input_is_refused_on_its_field_and_writes_nothing(self, session, world, field, value):
        unit = {"net_weight_g": Unit.BOX}.get(field, Unit.JIN)
        data = replace(listing(world, unit=unit, net_weight_g=1000), **{field: value})
        before = (count(session, Product), count(session, AuditEvent))
        with pytest.raises(ValidationError) as info:
            catalog.create_product(session, world.farmer, data)
        assert field in info.value.field_errors, info.value.field_errors
        assert all(str(m) for m in info.value.field_errors[field])
        assert (count(session, Product), count(session, AuditEvent)) == before

    def test_every_error_is_reported_at_once(self, session, world):
        with pytest.raises(ValidationError) as info:
            catalog.create_product(session, world.farmer, listing(world, name="", price_fen=0, stock=-1))
        assert {"name", "price_fen", "stock"} <= set(info.value.field_errors)

    def test_a_parent_category_is_not_a_place_for_a_listing(self, session, world):
        with pytest.raises(ValidationError) as info:
            catalog.create_product(session, world.farmer, listing(world, category_id=world.top.id))
        assert "category_id" in info.value.field_errors

    def test_the_harvest_cannot_end_before_it_starts(self, session, world):
        with pytest.raises(ValidationError) as info:
            catalog.create_product(
                session,
                world.farmer,
                listing(world, harvest_start=date(2026, 10, 1), harvest_end=date(2026, 9, 1)),
            )
        assert "harvest_end" in info.value.field_errors

    def test_a_pre_sale_needs_the_date_it_ships_from(self, session, world):
        with pytest.raises(ValidationError) as info:
            catalog.create_product(session, world.farmer, listing(world, presale=True))
        assert "ships_from" in info.value.field_errors
        product = catalog.create_product(
            session, world.farmer, listing(world, presale=True, stock=0, ships_from=date(2026, 10, 15))
        )
        # A pre-sale sells against the coming harvest: on sale with nothing in stock yet.
        assert product.status == ProductStatus.ACTIVE and product.ships_from == date(2026, 10, 15)

    def test_ships_from_is_dropped_without_a_pre_sale(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world, ships_from=date(2026, 10, 15)))
        assert product.ships_from is None

    def test_certifications_with_their_numbers(self, session, world):
        certs = (
            (CertificationKind.GREEN_FOOD, "LB-45-2107070712A"),
            (CertificationKind.GEOGRAPHICAL_INDICATION, "AGI01234"),
        )
        product = catalog.create_product(session, world.farmer, listing(world, certifications=certs))
        assert sorted((c.kind, c.number) for c in product.certifications) == sorted(certs)

    def test_a_listing_with_no_stock_is_sold_out_from_the_start(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world, stock=0))
        assert product.status == ProductStatus.SOLD_OUT

    def test_a_draft_is_not_published(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world), publish=False)
        assert product.status == ProductStatus.DRAFT and product.published_at is None

    def test_buyers_cannot_list(self, session, world):
        with pytest.raises(Forbidden):
            catalog.create_product(session, world.buyer, listing(world))
        assert count(session, Product, Product.seller_id == world.buyer.id) == 0

    def test_a_farmer_without_a_profile_fills_it_in_first(self, session, make_user, world):
        farmer = make_user(Role.FARMER)
        with pytest.raises(Conflict):
            catalog.create_product(session, farmer, listing(world))

    def test_anonymous_cannot_list(self, session, world):
        with pytest.raises(Unauthorized):
            catalog.create_product(session, None, listing(world))


class TestIdempotentCreate:
    def test_the_same_key_returns_the_same_product(self, session, world):
        first = catalog.create_product(session, world.farmer, listing(world), idempotency_key="k-1")
        again = catalog.create_product(
            session, world.farmer, listing(world, price_fen=999), idempotency_key="k-1"
        )
        assert again.id == first.id and again.price_fen == 680
        assert count(session, Product, Product.seller_id == world.farmer.id) == 1
        assert len(events(session, first.id)) == 1

    def test_another_key_makes_another_product(self, session, world):
        a = catalog.create_product(session, world.farmer, listing(world), idempotency_key="k-1")
        b = catalog.create_product(session, world.farmer, listing(world), idempotency_key="k-2")
        assert a.id != b.id

    def test_keys_are_per_seller(self, session, world):
        a = catalog.create_product(session, world.farmer, listing(world), idempotency_key="same")
        b = catalog.create_product(session, world.neighbour_farmer, listing(world), idempotency_key="same")
        assert a.id != b.id and b.seller_id == world.neighbour_farmer.id


class TestDrafts:
    def test_a_draft_is_made_once_per_form_and_changed_while_it_is_a_draft(self, session, world):
        key = uuid.uuid4().hex
        draft = catalog.save_draft(session, world.farmer, listing(world), idempotency_key=key)
        assert draft.status == ProductStatus.DRAFT
        again = catalog.save_draft(session, world.farmer, listing(world, price_fen=720), idempotency_key=key)
        assert again.id == draft.id and again.price_fen == 720
        assert count(session, Product, Product.seller_id == world.farmer.id) == 1

    def test_a_published_listing_is_left_alone(self, session, world):
        key = uuid.uuid4().hex
        draft = catalog.save_draft(session, world.farmer, listing(world), idempotency_key=key)
        catalog.set_status(session, world.farmer, draft.id, ProductStatus.ACTIVE)
        again = catalog.save_draft(session, world.farmer, listing(world, price_fen=1), idempotency_key=key)
        assert again.id == draft.id and again.price_fen == 680 and again.status == ProductStatus.ACTIVE

    def test_a_step_is_checked_on_its_own_fields_only(self, session, world):
        # Step 1 (what): the price is not asked yet, so its placeholder is not an error.
        step1 = ("category_id", "name", "description", "unit", "net_weight_g")
        catalog.validate_listing(session, world.farmer, listing(world, price_fen=-1), fields=step1)
        with pytest.raises(ValidationError) as info:
            catalog.validate_listing(
                session, world.farmer, listing(world, name="", price_fen=-1), fields=step1
            )
        assert set(info.value.field_errors) == {"name"}


# --- agents -----------------------------------------------------------------------------------------


class TestAgentListsForAFarmer:
    def test_with_consent_the_farmer_is_the_seller_and_the_agent_who_listed(self, session, world):
        record = consent(session, world.agent, world.farmer, world.point)
        product = catalog.create_product(session, world.agent, listing(world), seller_id=world.farmer.id)
        assert product.seller_id == world.farmer.id
        assert product.listed_by_id == world.agent.id
        assert product.consent_id == record.id
        assert product.origin_code == world.village.code  # the farmer's village, not the agent's
        (event,) = events(session, product.id)
        assert event.actor_id == world.agent.id

    def test_without_consent_nothing_is_written(self, session, world):
        with pytest.raises(Forbidden):
            catalog.create_product(session, world.agent, listing(world), seller_id=world.farmer.id)
        assert count(session, Product, Product.seller_id == world.farmer.id) == 0

    def test_another_agent_cannot_use_someone_elses_consent(self, session, world):
        consent(session, world.agent, world.farmer, world.point)
        with pytest.raises(Forbidden):
            catalog.create_product(session, world.other_agent, listing(world), seller_id=world.farmer.id)

    def test_a_farmer_cannot_list_for_another_farmer(self, session, world):
        with pytest.raises(Forbidden):
            catalog.create_product(session, world.neighbour_farmer, listing(world), seller_id=world.farmer.id)

    def test_the_agent_edits_the_farmers_listing_and_is_recorded(self, session, world):
        consent(session, world.agent, world.farmer, world.point)
        product = catalog.create_product(session, world.farmer, listing(world))
        catalog.set_price_and_stock(session, world.agent, product.id, price_fen=750)
        last = events(session, product.id)[-1]
        assert last.actor_id == world.agent.id and last.changes == {"price_fen": [680, 750]}
        assert row(session, product.id)["seller_id"] == world.farmer.id

    def test_a_revoked_consent_ends_the_agents_rights(self, session, world):
        record = consent(session, world.agent, world.farmer, world.point)
        product = catalog.create_product(session, world.agent, listing(world), seller_id=world.farmer.id)
        catalog.revoke_consent(session, world.farmer, record.id)
        before = row(session, product.id)
        with pytest.raises(Forbidden):
            catalog.set_price_and_stock(session, world.agent, product.id, price_fen=1)
        with pytest.raises(Forbidden):
            catalog.create_product(session, world.agent, listing(world), seller_id=world.farmer.id)
        with pytest.raises(Forbidden):
            catalog.listings_of(session, world.agent, seller_id=world.farmer.id)
        assert row(session, product.id) == before
        assert catalog.farmers_of_agent(session, world.agent) == []

    def test_consent_ends_when_the_agent_leaves_the_point(self, session, world):
        consent(session, world.agent, world.farmer, world.point)
        grant = next(g for g in world.agent.grants if g.role == Role.AGENT)
        accounts.revoke_role(session, world.admin, grant.id)
        session.refresh(world.agent)
        with pytest.raises(Forbidden):
            catalog.create_product(session, world.agent, listing(world), seller_id=world.farmer.id)

    def test_consent_ends_when_the_farmer_moves_out_of_the_points_town(self, session, world):
        consent(session, world.agent, world.farmer, world.point)
        catalog.save_seller_profile(
            session, world.farmer, shop_name="搬走的老李", division_code=world.far_village.code
        )
        assert catalog.active_consent(session, world.agent, world.farmer.id) is None
        with pytest.raises(Forbidden):
            catalog.create_product(session, world.agent, listing(world), seller_id=world.farmer.id)

    def test_the_farmer_may_end_the_consent_but_a_stranger_may_not(self, session, world):
        record = consent(session, world.agent, world.farmer, world.point)
        with pytest.raises(Forbidden):
            catalog.revoke_consent(session, world.neighbour_farmer, record.id)
        assert [c.id for c in catalog.consents_of_farmer(session, world.farmer)] == [record.id]
        catalog.revoke_consent(session, world.agent, record.id)
        assert catalog.consents_of_farmer(session, world.farmer) == []


class TestEnrollingAFarmer:
    PHONE = "13712340001"

    def enroll(self, session: Session, world: World, **kwargs: Any) -> ListingConsent:
        args: dict[str, Any] = {
            "phone": self.PHONE,
            "code": latest_sms_code(session, self.PHONE),
            "display_name": "钟阿婆",
            "village_code": world.neighbour.code,
            "policy": AuthPolicy(),
        }
        args.update(kwargs)
        return catalog.enroll_farmer(session, world.agent, **args)

    def send(self, session: Session, world: World, agent: User | None = None) -> None:
        catalog.request_consent_code(
            session, OutboxSmsGateway(lambda: session), agent or world.agent, self.PHONE, AuthPolicy()
        )

    def test_a_farmer_without_an_account_gets_one_a_profile_and_a_consent(self, session, world):
        self.send(session, world)
        body = session.scalars(select(SmsMessage.body).where(SmsMessage.phone == self.PHONE)).one()
        assert "代您上架" in body  # the text says what the farmer agrees to
        record = self.enroll(session, world)
        farmer = accounts.find_user_by_phone(session, self.PHONE)
        assert farmer is not None and farmer.has_role(Role.FARMER)
        assert record.farmer_id == farmer.id and record.agent_id == world.agent.id
        assert record.point_id == world.point.id and record.revoked_at is None
        profile = session.get(SellerProfile, farmer.id)
        assert profile.division_code == world.neighbour.code and profile.shop_name == "钟阿婆"
        with pytest.raises(accounts.Unauthorized):  # no password: nobody can log in as them
            accounts.authenticate(session, self.PHONE, "!", AuthPolicy())
        # And now the agent lists for them.
        product = catalog.create_product(session, world.agent, listing(world), seller_id=farmer.id)
        assert product.seller_id == farmer.id and product.origin_code == world.neighbour.code
        assert [c.farmer_id for c in catalog.farmers_of_agent(session, world.agent)] == [farmer.id]

    def test_an_existing_farmer_of_the_town_keeps_their_profile(self, session, world):
        self.PHONE = world.farmer.phone
        self.send(session, world)
        record = self.enroll(session, world, display_name="别的名字")
        assert record.farmer_id == world.farmer.id
        assert session.get(SellerProfile, world.farmer.id).shop_name == "柚农老李"

    @pytest.mark.parametrize("when", ["wrong", "expired"])
    def test_a_wrong_or_expired_code_writes_nothing(self, session, world, when):
        self.send(session, world)
        before = (count(session, User), count(session, ListingConsent), count(session, SellerProfile))
        code = latest_sms_code(session, self.PHONE)
        kwargs: dict[str, Any] = {}
        if when == "wrong":
            kwargs["code"] = "000000" if code != "000000" else "111111"
        else:
            kwargs["now"] = clock.now() + timedelta(minutes=30)
        with pytest.raises(ValidationError) as info:
            self.enroll(session, world, **kwargs)
        assert "code" in info.value.field_errors
        after = (count(session, User), count(session, ListingConsent), count(session, SellerProfile))
        assert after == before

    def test_a_village_outside_the_points_town_is_refused_before_the_code_is_used(self, session, world):
        self.send(session, world)
        with pytest.raises(ValidationError) as info:
            self.enroll(session, world, village_code=world.far_village.code)
        assert "village_code" in info.value.field_errors
        assert accounts.find_user_by_phone(session, self.PHONE) is None
        self.enroll(session, world)  # the code still works

    def test_a_farmer_living_in_another_town_cannot_be_enrolled(self, session, world):
        self.PHONE = world.far_farmer.phone
        self.send(session, world)
        with pytest.raises(Forbidden):
            self.enroll(session, world)
        assert count(session, ListingConsent, ListingConsent.farmer_id == world.far_farmer.id) == 0

    def test_html_in_the_name_is_refused(self, session, world):
        self.send(session, world)
        with pytest.raises(ValidationError) as info:
            self.enroll(session, world, display_name="<script>x</script>")
        assert "display_name" in info.value.field_errors

    def test_only_agents_send_consent_codes_and_enroll(self, session, world):
        with pytest.raises(Forbidden):
            self.send(session, world, agent=world.farmer)
        assert count(session, SmsMessage, SmsMessage.phone == self.PHONE) == 0
        with pytest.raises(Forbidden):
            catalog.enroll_farmer(
                session,
                world.farmer,
                phone=self.PHONE,
                code="123456",
                display_name="x",
                village_code=world.village.code,
                policy=AuthPolicy(),
            )

    def test_an_agent_cannot_enroll_themselves(self, session, world):
        self.PHONE = world.agent.phone
        with pytest.raises(ValidationError):
            self.send(session, world)

    def test_enrolling_twice_keeps_one_consent(self, session, world):
        self.send(session, world)
        first = self.enroll(session, world)
        session.execute(SmsMessage.__table__.delete().where(SmsMessage.phone == self.PHONE))
        catalog.request_consent_code(
            session,
            OutboxSmsGateway(lambda: session),
            world.agent,
            self.PHONE,
            AuthPolicy(),
            now=clock.now() + timedelta(hours=2),
        )
        second = self.enroll(session, world, now=clock.now() + timedelta(hours=2))
        assert second.id == first.id
        assert count(session, ListingConsent, ListingConsent.farmer_id == first.farmer_id) == 1

    def test_the_villages_an_agent_may_enroll_from_are_the_points_town(self, session, world):
        (group,) = places.enrollment_villages(session, world.agent)
        assert group.point.id == world.point.id
        assert group.villages[0].code == world.village.code  # the point's own village first
        assert {v.code[:9] for v in group.villages} == {world.village.code[:9]}
        assert world.neighbour.code in {v.code for v in group.villages}


# --- changing listings ------------------------------------------------------------------------------


class TestOnlyTheSellerAndTheirAgentEdit:
    def test_a_farmer_cannot_change_another_farmers_listing(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        before = row(session, product.id)
        attempts = [
            lambda: catalog.update_product(
                session, world.neighbour_farmer, product.id, listing(world, name="偷改")
            ),
            lambda: catalog.set_price_and_stock(session, world.neighbour_farmer, product.id, price_fen=1),
            lambda: catalog.set_status(session, world.neighbour_farmer, product.id, ProductStatus.PAUSED),
            lambda: catalog.patch_product(session, world.neighbour_farmer, product.id, {"stock": 0}),
            lambda: catalog.listing_history(session, world.neighbour_farmer, product.id),
            lambda: catalog.update_product(session, world.agent, product.id, listing(world, name="偷改")),
            lambda: catalog.set_price_and_stock(session, world.buyer, product.id, stock=0),
        ]
        for attempt in attempts:
            with pytest.raises(Forbidden):
                attempt()
        assert row(session, product.id) == before

    def test_the_refusal_comes_before_any_input_is_checked(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        with pytest.raises(Forbidden):
            catalog.update_product(session, world.neighbour_farmer, product.id, listing(world, name=""))

    def test_an_admin_may_change_any_listing(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        catalog.set_status(session, world.admin, product.id, ProductStatus.PAUSED)
        assert row(session, product.id)["status"] == ProductStatus.PAUSED

    def test_an_unknown_product_is_not_found(self, session, world):
        for product_id in (0, -1, 10**12, 987654):
            with pytest.raises(NotFound):
                catalog.set_price_and_stock(session, world.farmer, product_id, stock=1)


class TestUpdatingAListing:
    def test_the_change_is_recorded_with_before_and_after(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        catalog.update_product(
            session,
            world.farmer,
            product.id,
            listing(world, name="梅县金柚（特级）", storage_class=StorageClass.CHILLED),
        )
        last = events(session, product.id)[-1]
        assert last.action == "update" and last.actor_id == world.farmer.id
        assert last.changes == {
            "name": ["梅县金柚", "梅县金柚（特级）"],
            "storage_class": ["ambient", "chilled"],
        }

    def test_saving_the_same_values_records_nothing(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        catalog.update_product(session, world.farmer, product.id, listing(world))
        assert len(events(session, product.id)) == 1

    def test_a_certificate_number_changes_in_place(self, session, world):
        green = CertificationKind.GREEN_FOOD
        product = catalog.create_product(
            session, world.farmer, listing(world, certifications=((green, "A-1"),))
        )
        catalog.update_product(
            session, world.farmer, product.id, listing(world, certifications=((green, "A-2"),))
        )
        assert row(session, product.id)["certifications"] == [("green_food", "A-2")]
        catalog.update_product(session, world.farmer, product.id, listing(world))
        assert row(session, product.id)["certifications"] == []

    def test_bad_input_changes_nothing(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        before = row(session, product.id)
        with pytest.raises(ValidationError):
            catalog.update_product(
                session, world.farmer, product.id, listing(world, name="<i>x</i>", stock=5)
            )
        assert row(session, product.id) == before

    def test_patch_keeps_the_fields_not_sent(self, session, world):
        product = catalog.create_product(
            session, world.farmer, listing(world, certifications=((CertificationKind.ORGANIC, "O-9"),))
        )
        catalog.patch_product(session, world.farmer, product.id, {"description": "新描述"})
        after = row(session, product.id)
        assert after["description"] == "新描述" and after["name"] == "梅县金柚"
        assert after["certifications"] == [("organic", "O-9")]

    def test_patch_refuses_unknown_fields(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        with pytest.raises(ValidationError) as info:
            catalog.patch_product(session, world.farmer, product.id, {"seller_id": world.agent.id})
        assert "seller_id" in info.value.field_errors


class TestPriceAndStock:
    def test_one_tap_sets_absolute_values_and_a_repeat_changes_nothing(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        catalog.set_price_and_stock(session, world.farmer, product.id, price_fen=1250, stock=80)
        catalog.set_price_and_stock(session, world.farmer, product.id, price_fen=1250, stock=80)
        after = row(session, product.id)
        assert (after["price_fen"], after["stock"]) == (1250, 80)
        assert [e.changes for e in events(session, product.id)[1:]] == [
            {"price_fen": [680, 1250], "stock": [500, 80]}
        ]

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"price_fen": 0},
            {"price_fen": -1},
            {"price_fen": MAX_PRICE_FEN + 1},
            {"price_fen": 9.99},
            {"stock": -1},
            {"stock": MAX_STOCK + 1},
            {"stock": "10"},
            {"price_fen": 100, "stock": -3},
        ],
    )
    def test_out_of_range_values_change_nothing(self, session, world, kwargs):
        product = catalog.create_product(session, world.farmer, listing(world))
        before = row(session, product.id)
        with pytest.raises(ValidationError):
            catalog.set_price_and_stock(session, world.farmer, product.id, **kwargs)
        assert row(session, product.id) == before

    def test_sold_out_when_the_stock_reaches_zero_and_back_on_sale_when_restocked(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        catalog.set_price_and_stock(session, world.farmer, product.id, stock=0)
        assert row(session, product.id)["status"] == ProductStatus.SOLD_OUT
        catalog.set_price_and_stock(session, world.farmer, product.id, stock=30)
        assert row(session, product.id)["status"] == ProductStatus.ACTIVE
        statuses = [e.changes.get("status") for e in events(session, product.id)[1:]]
        assert statuses == [["active", "sold_out"], ["sold_out", "active"]]

    def test_a_paused_listing_stays_paused_whatever_the_stock(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        catalog.set_status(session, world.farmer, product.id, ProductStatus.PAUSED)
        catalog.set_price_and_stock(session, world.farmer, product.id, stock=0)
        catalog.set_price_and_stock(session, world.farmer, product.id, stock=9)
        assert row(session, product.id)["status"] == ProductStatus.PAUSED


class TestStatusMoves:
    def test_publish_pause_and_resume(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world), publish=False)
        for status in (ProductStatus.ACTIVE, ProductStatus.PAUSED, ProductStatus.ACTIVE):
            assert catalog.set_status(session, world.farmer, product.id, status).status == status
        moves = [e.changes["status"] for e in events(session, product.id) if e.action == "status"]
        assert moves == [["draft", "active"], ["active", "paused"], ["paused", "active"]]
        assert row(session, product.id)["published_at"] is not None

    def test_a_repeated_tap_records_nothing(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        catalog.set_status(session, world.farmer, product.id, ProductStatus.ACTIVE)
        assert len(events(session, product.id)) == 1

    def test_a_draft_cannot_be_paused(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world), publish=False)
        with pytest.raises(Conflict):
            catalog.set_status(session, world.farmer, product.id, ProductStatus.PAUSED)

    def test_sold_out_is_not_chosen_but_follows_the_stock(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        with pytest.raises(Conflict):
            catalog.set_status(session, world.farmer, product.id, ProductStatus.SOLD_OUT)

    def test_resuming_without_stock_asks_for_stock(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world, stock=0), publish=False)
        with pytest.raises(ValidationError) as info:
            catalog.set_status(session, world.farmer, product.id, ProductStatus.ACTIVE)
        assert "stock" in info.value.field_errors
        assert row(session, product.id)["status"] == ProductStatus.DRAFT

    def test_an_unknown_status_is_refused(self, session, world):
        product = catalog.create_product(session, world.farmer, listing(world))
        with pytest.raises(ValidationError):
            catalog.set_status(session, world.farmer, product.id, "deleted")  # type: ignore[arg-type]


class TestWhoSeesWhat:
    def test_drafts_and_paused_listings_are_seen_by_their_seller_and_agent_only(self, session, world):
        consent(session, world.agent, world.farmer, world.point)
        product = catalog.create_product(session, world.farmer, listing(world), publish=False)
        assert catalog.visible_product(session, world.farmer, product.id).id == product.id
        assert catalog.visible_product(session, world.agent, product.id).id == product.id
        for other in (None, world.buyer, world.neighbour_farmer):
            with pytest.raises(NotFound):
                catalog.visible_product(session, other, product.id)
        with pytest.raises(NotFound):
            catalog.get_public_product(session, product.id)
        catalog.set_status(session, world.farmer, product.id, ProductStatus.ACTIVE)
        assert catalog.visible_product(session, None, product.id).id == product.id

    def test_my_listings_newest_first_and_only_mine(self, session, world):
        a = catalog.create_product(session, world.farmer, listing(world, name="甲"))
        b = catalog.create_product(session, world.farmer, listing(world, name="乙"))
        catalog.create_product(session, world.neighbour_farmer, listing(world, name="丙"))
        assert [p.id for p in catalog.listings_of(session, world.farmer)] == [b.id, a.id]
        with pytest.raises(Forbidden):
            catalog.listings_of(session, world.farmer, seller_id=world.neighbour_farmer.id)

    def test_selling_as_checks_the_right_to(self, session, world, make_user):
        consent(session, world.agent, world.farmer, world.point)
        mine = catalog.selling_as(session, world.farmer)
        assert mine.seller.id == world.farmer.id and not mine.for_farmer
        theirs = catalog.selling_as(session, world.agent, world.farmer.id)
        assert theirs.for_farmer and theirs.profile.user_id == world.farmer.id
        with pytest.raises(Forbidden):
            catalog.selling_as(session, world.agent, world.neighbour_farmer.id)
        with pytest.raises(Forbidden):
            catalog.selling_as(session, world.buyer)
        assert catalog.selling_as(session, make_user(Role.FARMER)).profile is None

    def test_the_history_names_who_changed_what(self, session, world):
        consent(session, world.agent, world.farmer, world.point)
        product = catalog.create_product(session, world.farmer, listing(world))
        catalog.set_price_and_stock(session, world.agent, product.id, stock=3)
        history = catalog.listing_history(session, world.farmer, product.id)
        assert [(h.event.action, h.actor.id) for h in history] == [
            ("update", world.agent.id),
            ("create", world.farmer.id),
        ]


class TestCategories:
    def test_groups_with_the_sellers_flow_first(self, session, world):
        groups = catalog.category_groups(session, CategoryFlow.GOODS)
        mine = [
            (top.id, [c.id for c in children])
            for top, children in groups
            if top.id in (world.top.id, world.goods.id)
        ]
        assert mine == [
            (world.goods.id, [world.fertilizer.id]),
            (world.top.id, [world.pomelo.id, world.tea.id]),
        ]
        assert catalog.flow_of(SellerKind.MERCHANT) == CategoryFlow.GOODS
        assert catalog.flow_of(SellerKind.FARMER) == CategoryFlow.FARM
