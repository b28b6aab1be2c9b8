"""Who stands as what on an order, on the real database and localstripe (issue 9, findings 1-3):
distribution-center staff are staff only on parcels picked up at their center and never refund;
nobody is staff on an order they bought, placed or sell; refunds after the seller accepted are
decided by admins alone; an agent acts for a farmer only while the consent holds."""

from __future__ import annotations

import pytest

from domain import NodeKind, OrderStatus, Role, RoleGrant, SubOrder
from services import authz, places
from services.authz import Party, Standing
from services.catalog import consents
from services.errors import Forbidden, NotFound
from services.orders import manage
from services.orders.checkout import AddressInput
from services.orders.pricing import CheckoutSettings
from services.orders.states import IllegalTransition
from tests.conftest import MEIXIAN
from tests.factories import SHENZHEN_LONGGANG, carry, consent, receive

S = OrderStatus
SETTINGS = CheckoutSettings(free_shipping_from_fen=0, commission_bps=500)
GUANGZHOU_TIANHE = "440106"


def fresh(session, sub: SubOrder) -> SubOrder:  # type: ignore[no-untyped-def]
    session.expire_all()
    found = session.get(SubOrder, sub.id)
    assert found is not None
    return found


@pytest.fixture()
def centers(session, admin):  # type: ignore[no-untyped-def]
    """Two distribution centers, Shenzhen (serving Meixian) and Guangzhou, each with a clerk."""

    def dc(code: str, name: str):  # type: ignore[no-untyped-def]
        return places.create_node(
            session,
            admin,
            NodeKind.DISTRIBUTION_CENTER,
            {"division_code": code, "name": name},
            served_county_codes=[MEIXIAN],
        )

    return dc(SHENZHEN_LONGGANG, "深圳龙岗城乡配送中心"), dc(GUANGZHOU_TIANHE, "广州天河城乡配送中心")


@pytest.fixture()
def clerk(make_user, centers):  # type: ignore[no-untyped-def]
    """Staff of the Shenzhen distribution center."""
    return make_user(Role.DC_STAFF, node_id=centers[0].id, name="深圳配送中心员工")


def paid_sub(market, gateway, *, buyer=None, pickup=None, product: str = "梅县金柚") -> SubOrder:  # type: ignore[no-untyped-def]
    extra = {}
    if pickup is not None:
        extra = {
            "delivery": "pickup",
            "pickup_node_id": pickup.id,
            "pickup_contact": AddressInput(recipient="陈小姐", phone="13912345678"),
            "address": None,
        }
    order = market.pay(market.place({product: 1}, SETTINGS, buyer=buyer, **extra), gateway)
    (sub,) = order.sub_orders
    assert sub.status == S.PAID
    return sub


class TestDistributionCenterStaff:
    def test_a_clerk_of_another_center_can_neither_see_nor_touch_a_home_delivery(
        self, session, market, gateway, clerk
    ):
        sub = paid_sub(market, gateway)  # delivered to the buyer's address: no center involved
        assert manage.standings(session, clerk, sub) == set()
        with pytest.raises(NotFound):
            manage.visible_sub_order(session, clerk, sub.number)
        with pytest.raises(NotFound):
            manage.visible_order(session, clerk, sub.order.number)
        assert manage.staff_sub_orders(session, clerk) == []
        with pytest.raises(NotFound):
            manage.move(session, clerk, sub.number, S.ACCEPTED)
        with pytest.raises(NotFound):
            manage.staff_refund(session, gateway, clerk, sub.number, None, "退款", "dc-refund-1")
        assert fresh(session, sub).status == S.PAID and fresh(session, sub).refunded_fen == 0

    def test_a_clerk_moves_parcels_picked_up_at_their_center_and_never_refunds(
        self, session, market, gateway, clerk, centers, admin
    ):
        ours = paid_sub(market, gateway, pickup=centers[0])
        theirs = paid_sub(market, gateway, pickup=centers[1])
        assert manage.standings(session, clerk, ours) == {Standing.DC_STAFF}
        assert manage.standings(session, clerk, theirs) == set()
        assert [s.number for s in manage.staff_sub_orders(session, clerk)] == [ours.number]
        # The seller accepts, not the clerk.
        with pytest.raises(Forbidden):
            manage.move(session, clerk, ours.number, S.ACCEPTED)
        manage.move(session, market.shop.meixian_farmer, ours.number, S.ACCEPTED)
        receive(session, gateway, ours)  # the intake at the seller's county center
        # It travels by scans (the buttons give way to them); the clerk scans it in at their center.
        with pytest.raises(IllegalTransition):
            manage.move(session, clerk, ours.number, S.IN_TRANSIT)
        carry(session, ours, last_by=clerk)
        assert fresh(session, ours).status == S.READY_FOR_PICKUP
        offered = manage.sub_actions(session, clerk, fresh(session, ours))
        assert not offered.staff_refund and offered.moves == [S.COMPLETED]
        with pytest.raises(Forbidden):
            manage.staff_refund(session, gateway, clerk, ours.number, 100, "破损", "dc-refund-2")
        assert fresh(session, ours).refunded_fen == 0


class TestNobodyIsStaffOnTheirOwnOrder:
    def test_an_agent_who_buys_at_their_point_cannot_deliver_or_refund_it_to_themselves(
        self, session, market, gateway, point, make_user, admin
    ):
        agent = make_user(Role.AGENT, Role.BUYER, node_id=point.id, name="梅县村小二")
        sub = paid_sub(market, gateway, buyer=agent, pickup=point)
        assert manage.standings(session, agent, sub) == {Standing.BUYER}
        assert manage.parties(session, agent, sub) == {Party.BUYER}
        assert manage.staff_sub_orders(session, agent) == []
        manage.move(session, market.shop.meixian_farmer, sub.number, S.ACCEPTED)
        with pytest.raises(Forbidden):  # nobody receives what they bought
            receive(session, gateway, sub, by=agent)
        receive(session, gateway, sub)  # another agent of the point receives it
        manage.move(session, admin, sub.number, S.IN_TRANSIT)
        with pytest.raises(Forbidden):
            manage.move(session, agent, sub.number, S.READY_FOR_PICKUP)
        with pytest.raises(Forbidden):
            manage.staff_refund(session, gateway, agent, sub.number, None, "自己退", "self-refund-1")
        after = fresh(session, sub)
        assert after.status == S.IN_TRANSIT and after.refunded_fen == 0

    def test_the_same_agent_is_staff_on_their_neighbours_pickups(
        self, session, market, gateway, point, make_user
    ):
        agent = make_user(Role.AGENT, node_id=point.id, name="梅县村小二")
        sub = paid_sub(market, gateway, pickup=point)
        assert manage.standings(session, agent, sub) == {Standing.POINT_AGENT}
        assert [s.number for s in manage.staff_sub_orders(session, agent)] == [sub.number]

    def test_a_seller_who_is_also_the_points_agent_does_not_confirm_their_own_hand_in(
        self, session, market, gateway, point
    ):
        farmer = market.shop.meixian_farmer
        session.add(RoleGrant(user_id=farmer.id, role=Role.AGENT, node_id=point.id))
        session.commit()
        session.refresh(farmer)
        sub = paid_sub(market, gateway, pickup=point)
        assert manage.standings(session, farmer, sub) == {Standing.SELLER}
        manage.move(session, farmer, sub.number, S.ACCEPTED)
        with pytest.raises(Forbidden):
            receive(session, gateway, sub, by=farmer)
        assert fresh(session, sub).status == S.ACCEPTED

    def test_an_admin_who_bought_is_only_a_buyer(self, session, market, gateway, admin):
        sub = paid_sub(market, gateway, buyer=admin)
        assert manage.standings(session, admin, sub) == {Standing.BUYER}
        with pytest.raises(Forbidden):
            manage.staff_refund(session, gateway, admin, sub.number, None, "自己退", "admin-self-1")


class TestRefundsAreAdmins:
    def test_county_staff_and_the_agent_move_parcels_but_only_an_admin_refunds_or_turns_down(
        self, session, market, gateway, point, make_user, admin
    ):
        county = make_user(Role.COUNTY_STAFF, county_code=MEIXIAN, name="梅县中心")
        agent = make_user(Role.AGENT, node_id=point.id, name="梅县村小二")
        sub = paid_sub(market, gateway, pickup=point)
        manage.move(session, market.shop.meixian_farmer, sub.number, S.ACCEPTED)
        receive(session, gateway, sub, by=agent)  # the receiving agent records the intake
        manage.move(session, county, sub.number, S.IN_TRANSIT)
        manage.move(session, agent, sub.number, S.READY_FOR_PICKUP)
        manage.move(session, market.buyer, sub.number, S.COMPLETED)
        manage.request_refund(session, gateway, market.buyer, sub.number, "坏了两个")
        for staff in (county, agent):
            offered = manage.sub_actions(session, staff, fresh(session, sub))
            assert not offered.staff_refund and offered.moves == []
            with pytest.raises(Forbidden):
                manage.staff_refund(session, gateway, staff, sub.number, 100, "坏了", f"r-{staff.id}")
            with pytest.raises(Forbidden):
                manage.move(session, staff, sub.number, S.COMPLETED)  # turning the request down
        assert fresh(session, sub).refunded_fen == 0
        manage.staff_refund(session, gateway, admin, sub.number, 100, "坏了两个", "admin-refund-1")
        assert fresh(session, sub).refunded_fen == 100


class TestOneConsentCheck:
    def test_an_agent_moved_to_another_point_loses_the_farmers_orders(
        self, session, market, gateway, point, village_point, make_user
    ):
        farmer = market.shop.meixian_farmer
        agent = make_user(Role.AGENT, node_id=point.id, name="梅县村小二")
        consent(session, agent, farmer, point)
        sub = paid_sub(market, gateway)
        assert Standing.OPERATOR in manage.standings(session, agent, sub)
        assert [s.number for s in manage.seller_sub_orders(session, agent, seller_id=farmer.id)] == [
            sub.number
        ]
        # The county moves the agent to a point in another county.
        grant = next(g for g in agent.grants if g.role == Role.AGENT)
        grant.node_id = village_point(MEIXIAN, 1).id
        session.commit()
        session.refresh(agent)
        session.expire_all()
        assert consents.active_consent(session, agent, farmer.id) is None
        assert manage.standings(session, agent, fresh(session, sub)) == set()
        with pytest.raises(NotFound):
            manage.seller_sub_orders(session, agent, seller_id=farmer.id)
        with pytest.raises(NotFound):
            manage.decline(session, gateway, agent, sub.number, "不卖了")
        assert fresh(session, sub).status == S.PAID


class TestTheTable:
    def test_every_standing_maps_to_parties_and_only_admins_decide_refunds(self):
        assert set(authz.STANDING_PARTIES) == set(Standing)
        deciders = {s for s, parties in authz.STANDING_PARTIES.items() if Party.ADMIN in parties}
        assert deciders == {Standing.ADMIN}
        assert authz.SUB_ORDER_ACTIONS[authz.Action.REFUND] == {Party.ADMIN}

    def test_no_staff_party_accepts_for_the_seller_nor_declines(self):
        from services.orders import states

        assert states.TRANSITIONS[S.PAID][S.ACCEPTED] == {Party.SELLER}
        assert not authz.may(authz.Action.DECLINE, {Party.STAFF, Party.ADMIN})
        with pytest.raises(IllegalTransition):
            states.apply(None, SubOrder(status=S.PAID), S.ACCEPTED, party=Party.STAFF)  # type: ignore[arg-type]


class TestRevokingTheAgentRole:
    def test_ends_the_consents_given_at_that_point(self, session, market, point, make_user, admin):
        from domain import ListingConsent
        from services import accounts

        farmer = market.shop.meixian_farmer
        agent = make_user(Role.AGENT, node_id=point.id, name="梅县村小二")
        given = consent(session, agent, farmer, point)
        (grant,) = [g for g in agent.grants if g.role == Role.AGENT]
        accounts.revoke_role(session, admin, grant.id, user_id=agent.id)
        session.expire_all()
        assert session.get(ListingConsent, given.id).revoked_at is not None
        # Appointed again at the same point, the agent needs the farmer's consent anew.
        make_user_grant = RoleGrant(user_id=agent.id, role=Role.AGENT, node_id=point.id)
        session.add(make_user_grant)
        session.commit()
        session.refresh(agent)
        assert consents.active_consent(session, agent, farmer.id) is None
