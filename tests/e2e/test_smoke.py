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


class TestApiDocsPage:
    def test_swagger_ui_is_served_by_the_app_with_no_cdn_and_no_inline_script(self, client):
        import re

        resp = client.get("/api/docs")
        assert resp.status_code == 200
        page = resp.get_data(as_text=True)
        csp = resp.headers["Content-Security-Policy"]
        assert "https:" not in csp and "script-src 'self';" in csp
        assert "https://" not in page and "http://" not in page
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "an inline script needs 'unsafe-inline'"
        assert 'data-spec-url="/api/openapi.json"' in page
        assets = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert {a.split("/")[-1].split("?")[0] for a in assets} == {
            "swagger-ui.css",
            "swagger-ui-standalone-preset.js",
            "swagger-ui-bundle.js",
            "swagger-init.js",
        }
        for url in assets:
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.data) > 100, url
            asset.close()

    def test_only_the_files_the_page_needs_are_served_from_the_bundle(self, client):
        assert client.get("/api/docs/swagger-ui/swagger-ui-bundle.js.map").status_code == 404
        assert client.get("/api/docs/swagger-ui/..%2F__init__.py").status_code == 404


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
