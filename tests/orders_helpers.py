"""Shared set-up for order and payment tests: a small shop with two farmers and a buyer, and
placing and paying orders through the real services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from domain import Order, Product, Role, User
from services.orders import checkout
from services.orders.addresses import AddressInput
from services.orders.checkout import CheckoutInput
from services.orders.pricing import CheckoutSettings
from services.payments import service as payments
from services.payments.gateway import PaymentGateway
from tests.conftest import MEIXIAN
from tests.integration.test_browse import Shop, build_shop


@dataclass
class Market:
    shop: Shop
    buyer: User
    village_code: str

    @property
    def session(self) -> Session:
        return self.shop.session

    def product(self, name: str) -> Product:
        return self.shop.products[name]

    def address(self) -> AddressInput:
        return AddressInput(
            recipient="陈小姐", phone="13912345678", division_code=self.village_code, detail="幸福路8号"
        )

    def place(
        self,
        items: dict[str, int] | dict[int, int],
        settings: CheckoutSettings,
        *,
        key: str | None = None,
        buyer: User | None = None,
        method: str = "card",
        **extra: Any,
    ) -> Order:
        ids = {(self.product(k).id if isinstance(k, str) else k): q for k, q in items.items()}
        data = CheckoutInput(
            items=ids,
            idempotency_key=key or checkout.new_idempotency_key(),
            payment_method=method,
            address=extra.pop("address", self.address()),
            **extra,
        )
        return checkout.place_order(self.session, buyer or self.buyer, data, settings).order

    def pay(self, order: Order, gateway: PaymentGateway, card: str = "pm_card_visa") -> Order:
        payments.confirm_with(self.session, gateway, order, card)
        self.session.refresh(order)
        return order


def build_market(session: Session, make_user, first_village) -> Market:  # type: ignore[no-untyped-def]
    shop = build_shop(session, make_user, first_village)
    buyer = make_user(Role.BUYER, name="广州买家")
    return Market(shop=shop, buyer=buyer, village_code=first_village(MEIXIAN).code)
