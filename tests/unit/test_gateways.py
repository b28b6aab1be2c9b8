"""marketplace.gateways: each edge is built once per app from settings, the implementation named by
its setting (an unknown name fails at start-up, not on first use), and handed out by accessors."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from domain import SmsMessage
from marketplace import gateways
from services.media import LocalStorage
from services.orders.pricing import CheckoutSettings
from services.payments.signature import InvalidSignature, sign_payload
from services.payments.stripe import StripeGateway
from services.sms import OutboxSmsGateway

WEBHOOK_SECRET = "whsec_unit_" + "7" * 32


def settings(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "STRIPE_API_BASE": "http://127.0.0.1:9",
        "STRIPE_SECRET_KEY": "sk_test_unit",
        "STRIPE_TIMEOUT_SECONDS": 1.0,
        "STRIPE_MAX_RETRIES": 0,
        "STRIPE_HTTP_POOL_SIZE": 4,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SMS_GATEWAY": "outbox",
        "MEDIA_STORAGE": "local",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "SECRET_KEY": "unit-secret-key-" + "9" * 32,  # pickup codes are derived from it
    }
    config.update(overrides)
    return config


@pytest.fixture()
def app(tmp_path: Path) -> Flask:
    app = Flask(__name__)
    app.config.update(settings(tmp_path))
    gateways.init_app(app)
    return app


class TestInitApp:
    def test_builds_every_gateway_once_and_the_accessors_return_them(self, app: Flask):
        with app.app_context():
            first = (gateways.payment_gateway(), gateways.sms_gateway(), gateways.media_storage())
            settings_ = gateways.checkout_settings()
        with app.app_context():  # another request or task: the same objects
            again = (gateways.payment_gateway(), gateways.sms_gateway(), gateways.media_storage())
        assert all(a is b for a, b in zip(first, again, strict=True))
        payment, sms, storage = first
        assert isinstance(payment, StripeGateway) and payment.base_url == "http://127.0.0.1:9"
        assert isinstance(sms, OutboxSmsGateway)
        assert isinstance(storage, LocalStorage)
        assert isinstance(settings_, CheckoutSettings)

    def test_a_swapped_gateway_is_what_the_accessor_returns(self, app: Flask, monkeypatch):
        fake = object()
        monkeypatch.setitem(app.extensions, "media_storage", fake)
        with app.app_context():
            assert gateways.media_storage() is fake

    def test_an_unknown_name_fails_when_the_app_is_built(self, tmp_path: Path):
        app = Flask(__name__)
        app.config.update(settings(tmp_path, SMS_GATEWAY="carrier-pigeon"))
        with pytest.raises(ValueError, match="SMS_GATEWAY"):
            gateways.init_app(app)


class TestBuildNotificationChannel:
    def test_the_setting_names_the_channel_and_an_unknown_one_fails_at_start(self, tmp_path: Path):
        from services.notify import SmsGatewayChannel, SmsOutboxChannel

        sms = OutboxSmsGateway(lambda: None)  # type: ignore[arg-type,return-value]
        assert isinstance(gateways.build_notification_channel(settings(tmp_path), sms), SmsOutboxChannel)
        named = settings(tmp_path, NOTIFICATION_CHANNEL="sms")
        assert isinstance(gateways.build_notification_channel(named, sms), SmsGatewayChannel)
        app = Flask(__name__)
        app.config.update(settings(tmp_path, NOTIFICATION_CHANNEL="carrier-pigeon"))
        with pytest.raises(ValueError, match="NOTIFICATION_CHANNEL"):
            gateways.init_app(app)

    def test_pickup_codes_need_a_secret_and_take_the_sms_codes_attempt_limit(self, tmp_path: Path):
        app = Flask(__name__)
        secret = "pickup-" + "3" * 32
        app.config.update(settings(tmp_path, PICKUP_CODE_SECRET=secret, SMS_CODE_MAX_ATTEMPTS=3))
        gateways.init_app(app)
        with app.app_context():
            keys = gateways.pickup_code_keys()
        assert (keys.secret, keys.max_attempts) == (secret, 3)
        assert "3333" not in repr(keys)
        bare = Flask(__name__)
        bare.config.update(settings(tmp_path, SECRET_KEY=""))
        with pytest.raises(RuntimeError, match="SECRET_KEY"):
            gateways.init_app(bare)


class TestBuildPaymentGateway:
    def test_the_gateway_verifies_webhooks_with_the_configured_secret(self, tmp_path: Path):
        body = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"}).encode()
        gateway = gateways.build_payment_gateway(settings(tmp_path))
        assert isinstance(gateway, StripeGateway)
        with gateway:
            event = gateway.parse_webhook(body, sign_payload(body, WEBHOOK_SECRET, int(time.time())))
            assert event["id"] == "evt_1"
            with pytest.raises(InvalidSignature):
                gateway.parse_webhook(body, sign_payload(body, "whsec_other", int(time.time())))


class TestBuildSmsGateway:
    def test_the_outbox_writes_through_the_session_current_at_each_send(self):
        class Recorder:
            def __init__(self) -> None:
                self.added: list[Any] = []

            def add(self, obj: Any) -> None:
                self.added.append(obj)

        sessions = [Recorder(), Recorder()]
        current = iter(sessions)
        gateway = OutboxSmsGateway(lambda: next(current))  # type: ignore[arg-type,return-value]
        gateway.send("13900000001", "验证码 123456")
        gateway.send("13900000002", "验证码 654321")
        assert [[(m.phone, m.body) for m in s.added] for s in sessions] == [
            [("13900000001", "验证码 123456")],
            [("13900000002", "验证码 654321")],
        ]
        assert all(isinstance(m, SmsMessage) for s in sessions for m in s.added)

    def test_only_the_outbox_ships_with_the_code(self, tmp_path: Path):
        assert isinstance(gateways.build_sms_gateway(settings(tmp_path)), OutboxSmsGateway)
        with pytest.raises(ValueError):
            gateways.build_sms_gateway(settings(tmp_path, SMS_GATEWAY="aliyun"))


class TestBuildMediaStorage:
    def test_the_configured_storage(self, tmp_path: Path):
        store = gateways.build_media_storage({"MEDIA_STORAGE": "local", "MEDIA_ROOT": str(tmp_path)})
        assert isinstance(store, LocalStorage)
        assert store.root == tmp_path.resolve()
        with pytest.raises(ValueError):
            gateways.build_media_storage({"MEDIA_STORAGE": "s3", "MEDIA_ROOT": str(tmp_path)})


class TestBuildDistanceMatrix:
    def test_haversine_by_default_with_the_settings_road_factor_and_an_unknown_name_fails_at_start(
        self, tmp_path: Path
    ):
        from services.logistics.distance import HaversineMatrix

        app = Flask(__name__)
        app.config.update(settings(tmp_path, ROAD_FACTOR=1.5, ROAD_SPEED_KMH=30))
        gateways.init_app(app)
        with app.app_context():
            matrix = gateways.distance_matrix()
        assert isinstance(matrix, HaversineMatrix) and (matrix.road_factor, matrix.speed_kmh) == (1.5, 30.0)
        app = Flask(__name__)
        app.config.update(settings(tmp_path, DISTANCE_MATRIX="crow-flies"))
        with pytest.raises(ValueError, match="DISTANCE_MATRIX"):
            gateways.init_app(app)
