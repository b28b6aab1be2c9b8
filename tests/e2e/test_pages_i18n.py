"""Error pages and the language switch, in both languages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from domain import SmsMessage
from marketplace import create_app
from marketplace.config import TestingConfig


def switch_to_english(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/lang", data={"lang": "en", "next": "/"})
    assert resp.status_code == 302


class TestLanguageSwitch:
    def test_chinese_is_the_default(self, client):
        html = client.get("/").get_data(as_text=True)
        assert '<html lang="zh-CN">' in html
        assert "粤农通" in html

    def test_switching_to_english_sticks_across_requests(self, client):
        switch_to_english(client)
        html = client.get("/").get_data(as_text=True)
        assert '<html lang="en">' in html
        assert "Guangdong Rural Marketplace" in html
        client.post("/lang", data={"lang": "zh_Hans_CN"})
        assert '<html lang="zh-CN">' in client.get("/").get_data(as_text=True)

    def test_an_english_browser_gets_english(self, client):
        html = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
        assert '<html lang="en">' in html

    def test_unknown_language_is_rejected(self, client):
        assert client.post("/lang", data={"lang": "fr"}).status_code == 400

    def test_switch_never_redirects_off_site(self, client):
        resp = client.post("/lang", data={"lang": "en", "next": "https://evil.example/"})
        assert resp.headers["Location"] == "/"
        resp = client.post("/lang", data={"lang": "en", "next": "//evil.example/x"})
        assert resp.headers["Location"] == "/"


class TestErrorPages:
    @pytest.mark.parametrize(
        "lang, text", [("zh_Hans_CN", "页面不存在"), ("en", "This page does not exist.")]
    )
    def test_404_page_in_both_languages(self, client, lang, text):
        client.post("/lang", data={"lang": lang})
        resp = client.get("/nowhere")
        assert resp.status_code == 404
        assert text in resp.get_data(as_text=True)

    def test_403_page_for_a_user_without_scope(self, client, make_user):
        from tests.conftest import login

        buyer = make_user()
        login(client, buyer.phone)
        resp = client.get("/manage/nodes")
        assert resp.status_code == 403
        assert "<h1>403</h1>" in resp.get_data(as_text=True)

    def test_api_errors_are_json_with_code_and_message(self, client):
        resp = client.get("/api/v1/nope")
        assert resp.status_code == 404
        body = resp.get_json()
        assert body["code"] == "not_found" and body["message"]

    def test_method_not_allowed_is_405_not_500(self, client):
        assert client.delete("/").status_code == 405

    def test_an_unexpected_exception_gives_a_500_page_and_writes_nothing(self, database_url, session):
        config = TestingConfig()
        config.DATABASE_URL = database_url
        app = create_app(config)
        app.extensions["database"].lend_session(session)

        @app.get("/boom")
        def boom():  # type: ignore[no-untyped-def]
            from marketplace.db import get_session

            get_session().add(SmsMessage(phone="13800000000", body="half-written"))
            get_session().flush()
            raise RuntimeError("boom")

        for lang, text in (("zh_Hans_CN", "服务器"), ("en", "Something went wrong on our side.")):
            client = app.test_client()
            client.post("/lang", data={"lang": lang})
            resp = client.get("/boom")
            assert resp.status_code == 500
            html = resp.get_data(as_text=True)
            assert text in html
            assert "Traceback" not in html and "RuntimeError" not in html
        assert session.scalars(select(SmsMessage).where(SmsMessage.body == "half-written")).all() == []
        app.extensions["database"].engine.dispose()


class TestCsrf:
    def test_language_switch_needs_no_token_but_other_forms_do(self, database_url, session):
        config = TestingConfig()
        config.DATABASE_URL = database_url
        config.WTF_CSRF_ENABLED = True
        app = create_app(config)
        app.extensions["database"].lend_session(session)
        client = app.test_client()
        assert client.post("/lang", data={"lang": "en"}).status_code == 302
        assert client.post("/auth/login", data={"phone": "13800000001", "password": "x"}).status_code == 400
        app.extensions["database"].engine.dispose()
