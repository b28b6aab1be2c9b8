class TestHomePage:
    def test_home_renders_in_chinese_by_default(self, client):
        resp = client.get("/")
        assert resp.status_code == 200
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")

    def test_unknown_page_is_404_page(self, client):
        resp = client.get("/no-such-page")
        assert resp.status_code == 404

    def test_unknown_api_path_is_json_404(self, client):
        resp = client.get("/api/v1/no-such")
        assert resp.status_code == 404
        assert resp.get_json()["code"] == "not_found"
