"""Villagers registered by village agents (issue 11, item 2): the rules of services/villagers.py
on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from domain import AuditEvent, ConsentMethod, Role, SmsPurpose, Villager
from services import accounts, villagers
from services.errors import Conflict, Forbidden, NotFound, ValidationError
from services.villagers import VillagerInput
from tests.conftest import count, latest_sms_code
from tests.factories import COUNTY, OTHER_COUNTY, World, build_world


@pytest.fixture()
def world(session, admin, make_user) -> World:  # type: ignore[no-untyped-def]
    return build_world(session, admin, make_user)


def register(session: Session, w: World, **changes: str) -> Villager:
    data = {"name": "王秀英", "village_code": w.village.code, "phone": "", "notes": "", **changes}
    key = data.pop("key", None)
    return villagers.register_villager(session, w.agent, VillagerInput(**data), idempotency_key=key)


def test_agent_registers_a_villager_without_a_phone(session: Session, world: World) -> None:
    v = register(session, world, notes="送到女儿家")
    assert (v.point_id, v.village_code, v.phone, v.notes) == (
        world.point.id,
        world.village.code,
        "",
        "送到女儿家",
    )
    assert (v.name_pinyin, v.name_initials) == ("wangxiuying", "wxy")
    assert v.consent_method == ConsentMethod.IN_PERSON
    assert v.consent_agent_id == world.agent.id and v.consented_at is not None
    assert v.user_id is None
    assert count(session, AuditEvent, AuditEvent.action == "register_villager") == 1


def test_a_family_phone_serves_several_villagers(session: Session, world: World) -> None:
    a = register(session, world, name="王秀英", phone="13800000061")
    b = register(session, world, name="李大山", phone="13800000061", village_code=world.neighbour.code)
    assert a.id != b.id
    assert count(session, Villager, Villager.phone == "13800000061") == 2


def test_registered_twice_is_a_conflict_and_writes_nothing(session: Session, world: World) -> None:
    register(session, world, phone="13800000061")
    with pytest.raises(Conflict) as exc:
        register(session, world, phone="13800000061")
    assert exc.value.status == 409
    assert "name" in exc.value.field_errors
    # without a phone, twice, is the same person too
    register(session, world)
    with pytest.raises(Conflict):
        register(session, world, name=" 王秀英 ")
    assert count(session, Villager) == 2


def test_the_same_key_returns_the_same_villager(session: Session, world: World) -> None:
    first = register(session, world, key="k-1")
    again = register(session, world, key="k-1")
    assert again.id == first.id
    assert count(session, Villager) == 1


def test_a_village_outside_the_points_town_is_refused(session: Session, world: World) -> None:
    with pytest.raises(ValidationError) as exc:
        register(session, world, village_code=world.far_village.code)
    assert exc.value.status == 422 and "village_code" in exc.value.field_errors
    assert count(session, Villager) == 0


def test_bad_fields_are_field_errors(session: Session, world: World) -> None:
    with pytest.raises(ValidationError) as exc:
        register(session, world, name="", phone="12", consent_method="telepathy")
    assert {"name", "phone", "consent_method"} <= set(exc.value.field_errors)
    with pytest.raises(ValidationError) as exc:
        register(session, world, consent_method="sms")  # no phone to text
    assert "phone" in exc.value.field_errors


def test_only_agents_register(session: Session, world: World) -> None:
    with pytest.raises(Forbidden):
        villagers.register_villager(
            session, world.buyer, VillagerInput(name="王秀英", village_code=world.village.code)
        )
    with pytest.raises(Forbidden):  # another point's agent cannot act for this point
        villagers.register_villager(
            session,
            world.other_agent,
            VillagerInput(name="王秀英", village_code=world.village.code),
            point_id=world.point.id,
        )
    assert count(session, Villager) == 0


def test_sms_consent_uses_the_code_read_out(session: Session, world: World, sms, policy) -> None:
    phone = "13800000077"
    villagers.request_consent_code(session, sms, world.agent, phone, policy)
    code = latest_sms_code(session, phone)
    wrong = VillagerInput(
        name="陈伯", village_code=world.village.code, phone=phone, consent_method="sms", code="000000"
    )
    if code != "000000":
        with pytest.raises(ValidationError):
            villagers.register_villager(session, world.agent, wrong, policy=policy)
        assert count(session, Villager) == 0
    right = VillagerInput(
        name="陈伯", village_code=world.village.code, phone=phone, consent_method="sms", code=code
    )
    v = villagers.register_villager(session, world.agent, right, policy=policy)
    assert v.consent_method == ConsentMethod.SMS
    with pytest.raises(Forbidden):
        villagers.request_consent_code(session, sms, world.buyer, phone, policy)
    assert SmsPurpose.VILLAGER_CONSENT.value == "villager_consent"


def test_found_by_name_phone_and_pinyin_initials(session: Session, world: World) -> None:
    wang = register(session, world, name="王秀英", phone="13800000061")
    li = register(session, world, name="李大山", phone="13900000062")
    register(session, world, name="张小红")

    def found(q: str) -> set[int]:
        return {v.id for v in villagers.list_villagers(session, world.agent, q=q)}

    assert found("wxy") == {wang.id}
    assert found("WXY") == {wang.id}
    assert found("lds") == {li.id}
    assert found("wang") == {wang.id}
    assert found("秀英") == {wang.id}
    assert found("0061") == {wang.id}
    assert found("138") == {wang.id}
    assert len(found("")) == 3
    assert found("zzz") == set()
    # another point's agent finds nothing of this point's villagers and cannot list it
    assert villagers.list_villagers(session, world.other_agent, q="wxy") == []
    with pytest.raises(Forbidden):
        villagers.list_villagers(session, world.other_agent, point_id=world.point.id)


def test_who_sees_a_villager_in_full(session: Session, world: World, make_user) -> None:
    v = register(session, world, phone="13800000061", notes="送到女儿家")
    staff = make_user(Role.COUNTY_STAFF, county_code=COUNTY)
    other_staff = make_user(Role.COUNTY_STAFF, county_code=OTHER_COUNTY)

    for who in (world.agent, staff):
        view = villagers.present(villagers.get_villager(session, who, v.id), who)
        assert (view.full, view.name, view.phone, view.notes) == (True, "王秀英", "13800000061", "送到女儿家")
    # county staff list the county's points
    assert [x.id for x in villagers.list_villagers(session, staff, point_id=world.point.id)] == [v.id]
    with pytest.raises(Forbidden):
        villagers.list_villagers(session, other_staff, point_id=world.point.id)

    for who in (world.other_agent, other_staff, world.buyer, world.farmer, world.admin, None):
        masked = villagers.present(v, who)
        assert (masked.full, masked.name, masked.phone, masked.notes) == (False, "王*", "138****0061", "")
    for who in (world.other_agent, other_staff, world.buyer):
        with pytest.raises(NotFound):
            villagers.get_villager(session, who, v.id)


def test_notes_are_the_points_agents_to_change(session: Session, world: World, make_user) -> None:
    v = register(session, world)
    assert villagers.update_notes(session, world.agent, v.id, "送到女儿家").notes == "送到女儿家"
    staff = make_user(Role.COUNTY_STAFF, county_code=COUNTY)
    with pytest.raises(Forbidden):
        villagers.update_notes(session, staff, v.id, "x")
    with pytest.raises(NotFound):
        villagers.update_notes(session, world.other_agent, v.id, "x")
    session.refresh(v)
    assert v.notes == "送到女儿家"


def test_registering_with_the_phone_links_only_the_named_villager(
    session: Session, world: World, sms, policy
) -> None:
    phone = "13800000088"
    mother = register(session, world, name="王秀英", phone=phone)
    father = register(session, world, name="李大山", phone=phone)
    accounts.request_sms_code(session, sms, phone, SmsPurpose.REGISTER, policy)
    user = accounts.register(
        session,
        phone=phone,
        code=latest_sms_code(session, phone),
        password="a-long-password",
        display_name="王秀英",
        policy=policy,
    )
    session.refresh(mother)
    session.refresh(father)
    assert mother.user_id == user.id
    assert father.user_id is None
    # the villager now sees themself in full
    view = villagers.present(villagers.get_villager(session, user, mother.id), user)
    assert view.full and view.phone == phone
    with pytest.raises(NotFound):
        villagers.get_villager(session, user, father.id)
