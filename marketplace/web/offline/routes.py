"""What the pages of the people who work at a node (village agents, county and DC staff: the
agent's pages, the scan page) need to keep working when the connection drops (issue 11,
item 7). The queue itself lives in the browser (static/js/offline.js, IndexedDB); the server
only helps it:

- `/sw.js`: the service worker (static/js/sw.js), served from the site root so its scope is the
  whole site, with its settings prepended (`self.OFFLINE_CONFIG`): a version made of the static
  files' hashes (a new deploy installs a new worker, which deletes the old caches), the page
  prefixes it may cache, the URLs whose POST clears the page cache (log in, log out).
- `/offline/csrf`: a fresh CSRF token (JSON) for replaying a stored form whose token may be stale
  by then; 401 when nobody is logged in (the queue waits for the agent to log in again).
- `/offline`: the page the worker shows for an agent's page it has not seen, offline.
- an app-wide hook on answers: a form POST sent by offline.js (`X-Offline-Submit: live` or
  `replay`) gets its redirect as JSON (`{"location": …}`, 200), because a script cannot read a
  redirect's target, and the page then opens that location itself (the flash message is still
  in the session); a redirect to the log-in page is a 401 instead, so a replay is never taken
  for done. GET pages that may be kept for offline use are marked `X-Offline-Cacheable: 1`
  (pages of a logged-in agent under OFFLINE_PAGE_PREFIXES); the worker keeps only those.

Without JavaScript none of this is used: the forms post and redirect as before.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from flask import Response, current_app, jsonify, render_template, request, url_for
from flask_wtf.csrf import generate_csrf

from domain import Role
from marketplace.auth import actor
from marketplace.formatting import static_url
from marketplace.web.offline import bp

SUBMIT_HEADER = "X-Offline-Submit"
# The pages the service worker may keep (network first, the copy only when offline): the
# agent's, and the scan page of everyone who works at a node.
OFFLINE_PAGE_PREFIXES = ("/workspace", "/agent/", "/scan")
# Who hands goods over at a node (authz.works_at): they keep working when the connection drops.
OFFLINE_ROLES = (Role.AGENT, Role.COUNTY_STAFF, Role.DC_STAFF)


def offline_enabled() -> bool:
    """The offline queue and the service worker are for logged-in people who work at a node:
    village agents, county center staff, distribution center staff."""
    user = actor()
    return user is not None and any(user.has_role(role) for role in OFFLINE_ROLES)


@bp.app_context_processor
def inject_offline() -> dict[str, object]:
    return {"offline_enabled": offline_enabled}


@lru_cache(maxsize=1)
def _static_version(folder: str) -> str:
    """One hash over every CSS and JS file: any change makes a new worker and new caches."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*/*")):
        if path.suffix in (".css", ".js"):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@bp.get("/sw.js")
def service_worker():  # type: ignore[no-untyped-def]
    folder = current_app.static_folder or ""
    config = {
        "version": _static_version(folder),
        "core": static_url("js/offline.js"),
        "static": url_for("static", filename=""),
        "pages": list(OFFLINE_PAGE_PREFIXES),
        "offline": url_for("offline.page"),
        "csrf": url_for("offline.csrf_token"),
        "clear": [url_for("auth.login"), url_for("auth.logout")],
    }
    script = (Path(folder) / "js" / "sw.js").read_text(encoding="utf-8")
    body = f"self.OFFLINE_CONFIG = {json.dumps(config)};\n{script}"
    response = Response(body, mimetype="text/javascript")
    # The browser checks for a new worker on each visit; never keep an old one.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/offline/csrf")
def csrf_token():  # type: ignore[no-untyped-def]
    user = actor()
    if user is None:
        response = jsonify({"code": "unauthorized"})
        response.status_code = 401
    else:
        response = jsonify(
            {"token": generate_csrf(), "field": current_app.config["WTF_CSRF_FIELD_NAME"], "user": user.id}
        )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/offline")
def page():  # type: ignore[no-untyped-def]
    return render_template("offline/offline.html")


@bp.after_app_request
def offline_answers(response: Response) -> Response:
    if request.method == "GET":
        if (
            response.status_code == 200
            and response.mimetype == "text/html"
            and (request.path.startswith(OFFLINE_PAGE_PREFIXES) or request.endpoint == "offline.page")
            and offline_enabled()
        ):
            response.headers["X-Offline-Cacheable"] = "1"
        return response
    if SUBMIT_HEADER not in request.headers or not 300 <= response.status_code < 400:
        return response
    # The same response object, changed in place: cookies the view or the extensions set stay.
    location = response.headers.get("Location", "")
    login = url_for("auth.login")
    body: dict[str, str] = {"location": location}
    response.status_code = 200
    if actor() is None and location.split("?")[0].endswith(login):
        body = {"code": "unauthorized", "login": location}
        response.status_code = 401
    response.set_data(json.dumps(body))
    response.mimetype = "application/json"
    del response.headers["Location"]
    response.headers["X-Offline-Location"] = location
    response.headers["Cache-Control"] = "no-store"
    return response
