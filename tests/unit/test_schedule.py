"""The schedule (services/logistics/schedule.py): runs on delivery days, cut-offs, ready times and
travel, in China's time whatever the machine's. Pure functions: instants in, instants out."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise

import pytest

from domain import NodeKind, clock
from services.logistics import schedule
from services.logistics.schedule import DOOR, Stop

# 梅县's seat and two places a few km and ~50 km from it (seed/data coordinates).
CENTER = Stop(1, NodeKind.COUNTY_CENTER, "梅县中心", latitude=24.265926, longitude=116.081656)
POINT = Stop(2, NodeKind.VILLAGE_POINT, "大黄村服务点", latitude=24.30, longitude=116.10)
OTHER_POINT = Stop(3, NodeKind.VILLAGE_POINT, "甲村服务点", latitude=24.22, longitude=116.05)
DC = Stop(4, NodeKind.DISTRIBUTION_CENTER, "梅州配送中心", latitude=24.288578, longitude=116.122523)
FAR_DC = Stop(5, NodeKind.DISTRIBUTION_CENTER, "佛山配送中心", latitude=22.80, longitude=113.29)


def china(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=clock.CHINA)


def in_china(instant: datetime) -> tuple[int, int, int, int]:
    local = clock.local(instant)
    return (local.month, local.day, local.hour, local.minute)


# 2026-12-03 is a Thursday.
THURSDAY = china(2026, 12, 3, 21, 0)


class TestCutOff:
    def test_ordered_before_the_cut_off_it_is_ready_the_next_delivery_day_afternoon(self):
        plan = schedule.plan([(CENTER, POINT)], origin=CENTER, at_time=THURSDAY, ordered=True)
        assert in_china(plan.ready_at) == (12, 4, 14, 0)  # Friday 14:00
        assert in_china(plan.order_by) == (12, 3, 22, 0)  # type: ignore[arg-type]

    def test_at_the_cut_off_itself_it_is_still_in_time(self):
        plan = schedule.plan([(CENTER, POINT)], origin=CENTER, at_time=china(2026, 12, 3, 22), ordered=True)
        assert in_china(plan.ready_at) == (12, 4, 14, 0)

    def test_a_minute_after_the_cut_off_it_goes_a_day_later(self):
        plan = schedule.plan(
            [(CENTER, POINT)], origin=CENTER, at_time=china(2026, 12, 3, 22, 1), ordered=True
        )
        assert in_china(plan.ready_at) == (12, 5, 14, 0)
        assert in_china(plan.order_by) == (12, 4, 22, 0)  # type: ignore[arg-type]

    def test_the_point_s_own_cut_off_counts(self):
        early = Stop(**{**POINT.__dict__, "cutoff": time(18, 0)})
        plan = schedule.plan([(CENTER, early)], origin=CENTER, at_time=china(2026, 12, 3, 19), ordered=True)
        assert in_china(plan.ready_at) == (12, 5, 14, 0)


class TestDeliveryDays:
    def test_a_non_delivery_day_waits_for_the_next_delivery_day(self):
        mon_wed_fri = Stop(**{**POINT.__dict__, "days": "135"})
        # Thursday evening: Friday is a delivery day.
        plan = schedule.plan([(CENTER, mon_wed_fri)], origin=CENTER, at_time=THURSDAY, ordered=True)
        assert in_china(plan.ready_at) == (12, 4, 14, 0)
        # Friday evening: Saturday and Sunday are not; Monday is.
        plan = schedule.plan(
            [(CENTER, mon_wed_fri)], origin=CENTER, at_time=THURSDAY + timedelta(days=1), ordered=True
        )
        assert in_china(plan.ready_at) == (12, 7, 14, 0)

    def test_the_week_wraps_from_sunday_to_monday(self):
        mondays = Stop(**{**POINT.__dict__, "days": "1"})
        plan = schedule.plan(
            [(CENTER, mondays)], origin=CENTER, at_time=china(2026, 12, 6, 23, 30), ordered=True
        )
        assert in_china(plan.ready_at) == (12, 14, 14, 0)  # Sunday after the cut-off: not tomorrow
        plan = schedule.plan([(CENTER, mondays)], origin=CENTER, at_time=china(2026, 12, 6, 21), ordered=True)
        assert in_china(plan.ready_at) == (12, 7, 14, 0)

    def test_a_schedule_with_no_day_is_refused(self):
        with pytest.raises(schedule.NoRun):
            schedule.next_run_day("", china(2026, 12, 3).date())


class TestMidnight:
    def test_china_s_midnight_not_utc_s_decides_the_day(self):
        # 00:30 on Friday in China is 16:30 on Thursday in UTC: Friday's cut-off applies.
        just_after = datetime(2026, 12, 3, 16, 30, tzinfo=UTC)
        plan = schedule.plan([(CENTER, POINT)], origin=CENTER, at_time=just_after, ordered=True)
        assert in_china(plan.ready_at) == (12, 5, 14, 0)
        # 23:59 on Thursday in China (15:59 UTC) is after Thursday's cut-off too.
        plan = schedule.plan(
            [(CENTER, POINT)], origin=CENTER, at_time=datetime(2026, 12, 3, 15, 59, tzinfo=UTC), ordered=True
        )
        assert in_china(plan.ready_at) == (12, 5, 14, 0)

    def test_instants_are_utc(self):
        plan = schedule.plan([(CENTER, POINT)], origin=CENTER, at_time=THURSDAY, ordered=True)
        assert plan.ready_at == datetime(2026, 12, 4, 6, 0, tzinfo=UTC)


class TestRoutes:
    def test_within_a_county_up_to_the_center_then_down_the_next_run(self):
        # Ordered Thursday evening: collected at the point Friday 14:00, at the center by the
        # afternoon, down to the other point with Saturday's run.
        hops = [(POINT, CENTER), (CENTER, OTHER_POINT)]
        plan = schedule.plan(hops, origin=POINT, at_time=THURSDAY, ordered=True)
        up, down = plan.legs
        assert in_china(up.depart_at) == (12, 4, 14, 0)
        assert up.depart_at < up.arrive_at < up.depart_at + timedelta(hours=1)
        assert in_china(down.arrive_at) == (12, 5, 14, 0)
        assert down.depart_at == down.arrive_at - schedule.travel(CENTER, OTHER_POINT)
        assert plan.ready_at == down.arrive_at

    def test_produce_for_a_city_door_takes_the_evening_trunk_and_the_morning_round(self):
        hops = [(POINT, CENTER), (CENTER, DC), (DC, FAR_DC), (FAR_DC, DOOR)]
        plan = schedule.plan(hops, origin=POINT, at_time=THURSDAY, ordered=True)
        legs = plan.legs
        assert in_china(legs[1].depart_at) == (12, 4, 20, 0)  # the county's trunk, Friday evening
        assert in_china(legs[2].depart_at) == (12, 4, 23, 0)  # the DC's night line, the same night
        # ~430 km on the road: in 佛山 on Saturday morning, at the door by 14:00.
        assert in_china(legs[2].arrive_at)[:3] == (12, 5, 9)
        assert in_china(legs[3].arrive_at) == (12, 5, 14, 0)
        assert legs[3].depart_at == legs[3].arrive_at - schedule.travel(FAR_DC, DOOR)
        assert all(a.arrive_at <= b.depart_at for a, b in pairwise(legs))

    def test_collected_at_a_dc_from_its_next_ready_time(self):
        plan = schedule.plan([(CENTER, DC)], origin=CENTER, at_time=THURSDAY, ordered=True)
        (trunk,) = plan.legs
        assert in_china(trunk.depart_at) == (12, 4, 20, 0)
        assert in_china(plan.ready_at) == (12, 5, 14, 0)  # arrived Friday night, sorted by Saturday

    def test_a_dc_s_trunk_leaves_at_night(self):
        plan = schedule.plan([(DC, CENTER)], origin=DC, at_time=THURSDAY, ordered=True)
        assert in_china(plan.legs[0].depart_at) == (12, 4, 23, 0)

    def test_handed_in_at_the_intake_it_takes_the_first_run_after_handling(self):
        # In hand at the point on Friday at 12:00: the 14:00 visit takes it.
        plan = schedule.plan([(POINT, CENTER)], origin=POINT, at_time=china(2026, 12, 4, 12), ordered=False)
        assert in_china(plan.legs[0].depart_at) == (12, 4, 14, 0)
        assert plan.order_by is None
        # At 13:30 the visit is too soon (an hour to take it in): Saturday's.
        plan = schedule.plan(
            [(POINT, CENTER)], origin=POINT, at_time=china(2026, 12, 4, 13, 30), ordered=False
        )
        assert in_china(plan.legs[0].depart_at) == (12, 5, 14, 0)

    def test_handed_in_where_it_is_collected_it_is_ready_the_next_day(self):
        plan = schedule.plan([], origin=POINT, at_time=THURSDAY, ordered=True)
        assert in_china(plan.ready_at) == (12, 4, 14, 0) and plan.legs == ()
        assert schedule.plan([], origin=POINT, at_time=THURSDAY, ordered=False).ready_at == THURSDAY


class TestTravel:
    def test_distance_times_road_factor_at_the_average_speed(self):
        # 梅县 to 佛山: ~330 km straight, ×1.3 at 40 km/h: about 10.7 hours.
        hours = schedule.travel(DC, FAR_DC) / timedelta(hours=1)
        assert 10 < hours < 11.5

    def test_a_node_without_coordinates_counts_a_hundred_km_and_a_door_fifteen(self):
        nowhere = Stop(9, NodeKind.COUNTY_CENTER)
        assert schedule.travel(nowhere, DC) == timedelta(minutes=round(100 * 1.3 / 40 * 60))
        assert schedule.travel(DC, DOOR) == timedelta(minutes=round(15 * 1.3 / 40 * 60))


class TestParsing:
    @pytest.mark.parametrize(
        ("raw", "days"), [("135", "135"), ("5,3,1", "135"), ([7, 1], "17"), ("1234567", "1234567")]
    )
    def test_days(self, raw, days):
        assert schedule.parse_days(raw) == days

    @pytest.mark.parametrize("raw", ["", "8", "0", "1,x", [], None, "12 34 5 67 1 1 0"])
    def test_bad_days(self, raw):
        with pytest.raises(ValueError, match=r"\w"):
            schedule.parse_days(raw)

    @pytest.mark.parametrize(
        ("raw", "at"), [("22:00", time(22, 0)), ("8:30", time(8, 30)), ("21：30", time(21, 30))]
    )
    def test_times(self, raw, at):
        assert schedule.parse_time(raw) == at

    @pytest.mark.parametrize("raw", ["24:00", "22", "22:0", "ab:cd", "", None, "-1:00"])
    def test_bad_times(self, raw):
        with pytest.raises(ValueError, match=r"\w"):
            schedule.parse_time(raw)
