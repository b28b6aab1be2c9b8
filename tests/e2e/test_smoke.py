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


class TestOpenApiDocument:
    def test_documents_every_api_route_and_the_real_error_shape(self, client, app):
        doc = client.get("/api/openapi.json").get_json()
        documented = {path.replace("{", "<").replace("}", ">") for path in doc["paths"]}
        routes = {
            rule.rule.replace("<int:", "<").replace("<string:", "<")
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/api/v1/")
        }
        assert routes and routes <= documented
        error = doc["components"]["schemas"]["Error"]["properties"]
        assert error["code"]["type"] == "string" and "message" in error

    def test_json_carries_chinese_as_utf8(self, client):
        resp = client.post("/api/v1/auth/tokens", json={"phone": "123", "password": "x"})
        assert resp.status_code == 401
        assert "手机号".encode() in resp.data


class TestStaticFiles:
    def test_stylesheet_url_carries_its_content_hash_and_is_cached_for_a_year(self, client):
        html = client.get("/").get_data(as_text=True)
        import re

        href = re.search(r'href="(/static/css/site\.css\?v=[0-9a-f]{10})"', html)
        assert href, "the stylesheet link has no content hash"
        resp = client.get(href.group(1))
        assert resp.status_code == 200
        assert resp.cache_control.max_age == 365 * 86400
        resp.close()
