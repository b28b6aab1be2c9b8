"""Issue 10, item 2, on the admins' finance pages: each seller's carried balance (refunds after
their payout, to be netted) is shown, and a batch page shows what was owed, netted and paid."""

from __future__ import annotations

from services import ledger
from tests.conftest import NOW
from tests.factories import add_refund, add_seller, add_user, paid_and_completed


def test_the_finance_page_shows_what_sellers_carry_and_the_batch_page_the_netting(session, admin, as_user):
    buyer = add_user(session)
    seller = add_seller(session, "梅县金柚园")
    sub = paid_and_completed(session, buyer, seller, items=10_000, commission=500)
    session.commit()
    first = ledger.create_payout_batch(session, admin, now=NOW)
    ledger.mark_batch_paid(session, admin, first.id)
    ledger.post_refund(session, add_refund(session, sub, 2_000))  # after the payout: carried
    session.commit()
    carried = ledger.seller_carried(session, seller.id)
    assert carried == 1_900

    client = as_user(admin)
    page = client.get("/finance/").get_data(as_text=True)
    section = page.split('<section class="card carried"', 1)[1].split("</section>", 1)[0]
    assert f'data-fen="{carried}"' in section and "梅县金柚园" in section and "¥19.00" in section

    paid_and_completed(session, buyer, seller, items=1_000)  # owed 10.00: all of it netted
    session.commit()
    assert client.post("/finance/", data={"holding_days": "7"}).status_code == 302
    second = ledger.list_batches(session, admin)[0]
    (payout,) = second.payouts
    assert (payout.gross_fen, payout.netted_fen, payout.amount_fen) == (1_000, 1_000, 0)
    batch_page = client.get(f"/finance/batches/{second.id}").get_data(as_text=True)
    row = batch_page.split(f'data-seller-id="{seller.id}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-netted-fen="1000"' in row and "−¥10.00" in row and 'class="tag off"' in row
    csv_lines = client.get(f"/finance/batches/{second.id}.csv").get_data().decode("utf-8-sig").splitlines()
    assert len(csv_lines) == 1  # the header alone: nothing for the bank to transfer
    page = client.get("/finance/").get_data(as_text=True)
    assert 'data-fen="900"' in page.split('<section class="card carried"', 1)[1].split(">", 1)[0]
