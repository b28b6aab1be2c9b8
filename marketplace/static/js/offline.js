/* The village agent's offline queue (issue 11, item 7): a write form sent with no connection is
   kept on the phone (IndexedDB) and sent by itself when the connection returns, each with its own
   idempotency key, so the server applies it exactly once. Loaded by base.html for logged-in
   agents; the service worker (sw.js, served at /sw.js) imports this same file for replay().
   Without JavaScript nothing of this runs and the forms post as before.

   THE CONTRACT for a form that may be sent offline:
   - <form method="post" data-offline data-offline-label="登记村民 {name}"> … </form>
     `data-offline` opts the form in. `data-offline-label` is what the agent reads in the queue;
     {field} is replaced by that field's value as typed (a <select>: the chosen option's text).
   - The form has its hidden idempotency key: <input type="hidden" name="key" value="…"> (from
     services.orders.checkout.new_idempotency_key() or a uuid hex) and its CSRF token. A form
     without a `key` field is never queued (it posts as before).
   - The POST answers as the project's pages do: a redirect on success (PRG) and only then, the
     page again with a 4xx and role="alert" messages on a refusal. The same key again must return the first
     result (a redirect), never a refusal: that is how a submission applied whose answer was lost
     ends up "sent".
   - A submit button that must not be queued (it needs the network now, e.g. "send the SMS code")
     carries data-offline-skip: it posts natively, and offline the page says it needs a connection.
   - multipart forms (a photo) are kept too: their files go into IndexedDB as they are.

   What happens on submit: no connection (navigator.onLine false) → queued at once. Otherwise the
   form is sent with fetch (header X-Offline-Submit: live, 20 s timeout): a redirect comes back as
   JSON (marketplace/web/offline) and the page opens it; a refusal replaces the page's <main> with
   the server's; a network error, a timeout or a 502/503/504 → queued. The queue is replayed in
   order on page load, on the `online` event, every 30 s while something waits, and by Background
   Sync in the service worker: first a fresh CSRF token from /offline/csrf (the stored one may be
   stale), then each POST (X-Offline-Submit: replay) with its own key. A redirect → sent; a 4xx,
   or a 200 (the form again, not applied) → refused, kept and shown with the server's message
   (nothing is dropped); a 5xx, 408, 429 or network error → stays waiting and the replay stops
   there (the order is kept); 401 → waits for the agent to log in again. Items belong to the user who made them (another agent on the same
   phone neither sees nor sends them). Keys already sent are remembered, and a page that shows a
   used key (a copy from the service worker's cache, the back button) gets a fresh one. */
(function (self) {
  "use strict";
  var DB = "yn-offline", STORE = "queue", CHANNEL = "yn-offline", TIMEOUT_MS = 20000;
  var config = self.OFFLINE_CONFIG || {};
  var channel = self.BroadcastChannel ? new self.BroadcastChannel(CHANNEL) : null;
  var onChange = function () {};
  var running = null;

  // --- the queue in IndexedDB: {id, user, action, body | entries, key, label, queuedAt, state,
  //     tries, message, location, sentAt}; state: waiting | sent | refused ---------------------
  var opened = null; // one connection per page or worker, opened on first use
  function database() {
    opened = opened || new Promise(function (ok, no) {
      var open = self.indexedDB.open(DB, 1);
      open.onupgradeneeded = function () {
        open.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
      };
      open.onerror = function () { opened = null; no(open.error); };
      open.onsuccess = function () {
        open.result.onclose = open.result.onversionchange = function () { open.result.close(); opened = null; };
        ok(open.result);
      };
    });
    return opened;
  }
  function store(mode, fn) {
    return database().then(function (db) {
      return new Promise(function (ok, no) {
        var t = db.transaction(STORE, mode), req = fn(t.objectStore(STORE));
        t.oncomplete = function () { ok(req.result); };
        t.onerror = t.onabort = function () { no(t.error); };
      });
    });
  }
  function all() { return store("readonly", function (s) { return s.getAll(); }); }
  function put(item) { return store("readwrite", function (s) { return s.put(item); }); }
  function drop(id) { return store("readwrite", function (s) { return s.delete(id); }); }
  function changed() {
    if (channel) channel.postMessage("changed");
    onChange();
  }

  function send(url, options) {
    var ctl = new AbortController(), timer = setTimeout(function () { ctl.abort(); }, TIMEOUT_MS);
    options.credentials = "same-origin";
    options.signal = ctl.signal;
    return fetch(url, options).then(
      function (r) { clearTimeout(timer); return r; },
      function (e) { clearTimeout(timer); throw e; }
    );
  }

  function payload(item, token, field) {
    if (item.entries) {
      var data = new FormData();
      item.entries.forEach(function (e) {
        var value = token && e[0] === field ? token : e[1];
        if (typeof value === "string") data.append(e[0], value);
        else data.append(e[0], value, e[2]);
      });
      return data;
    }
    var params = new URLSearchParams(item.body);
    if (token) params.set(field, token);
    return params;
  }

  // The server's words from a refused form: its role="alert" texts, else an error page's lead.
  function message(html) {
    var found = [];
    [/role="alert"[^>]*>([\s\S]*?)<\/(?:p|div|span|li)>/g, /class="lead"[^>]*>([\s\S]*?)<\/p>/g].some(
      function (re) {
        var m;
        while ((m = re.exec(html))) {
          var text = m[1].replace(/<[^>]*>/g, " ").replace(/&(#39|quot|lt|gt|amp);/g, function (_, e) {
            return { "#39": "'", quot: '"', lt: "<", gt: ">", amp: "&" }[e];
          }).replace(/\s+/g, " ").trim();
          if (text && found.indexOf(text) < 0) found.push(text);
        }
        return found.length;
      }
    );
    return found.join(" ").slice(0, 300);
  }

  function judge(item, r, html) {
    var location = r.headers.get("X-Offline-Location");
    if (r.status === 401) return "login";
    if (location !== null) {
      item.state = "sent";
      item.sentAt = Date.now();
      item.location = location || "";
      item.message = "";
      return "sent";
    }
    item.message = message(html) || String(r.status);
    if (r.status >= 500 || r.status === 408 || r.status === 429) return "retry";
    item.state = "refused"; // a 4xx, or the form again with a 200: not applied, kept and shown
    return "refused";
  }

  function one(item, info) {
    item.tries = (item.tries || 0) + 1;
    return send(item.action, {
      method: "POST",
      body: payload(item, info.token, info.field),
      headers: { "X-Offline-Submit": "replay" }
    }).then(
      function (r) { return r.text().then(function (html) { return judge(item, r, html); }); },
      function () { return "offline"; }
    ).then(function (outcome) {
      return put(item).then(function () { changed(); return outcome; });
    });
  }

  function drain() {
    return all().then(function (items) {
      var waiting = items.filter(function (i) { return i.state === "waiting"; });
      if (!waiting.length) return "empty";
      return send(config.csrf, { headers: { Accept: "application/json" }, cache: "no-store" }).then(
        function (r) {
          if (r.status === 401) return "login";
          if (!r.ok) return "retry";
          return r.json().then(function (info) {
            var mine = waiting.filter(function (i) { return i.user === info.user; });
            return (function next(n) {
              if (n >= mine.length) return "done";
              return one(mine[n], info).then(function (outcome) {
                return outcome === "sent" || outcome === "refused" ? next(n + 1) : outcome;
              });
            })(0);
          });
        },
        function () { return "offline"; }
      );
    });
  }

  // One replay at a time on this device: the pages and the service worker share a lock.
  function replay() {
    if (running) return running;
    var locks = self.navigator.locks;
    running = (locks ? locks.request("yn-offline-replay", drain) : drain()).then(
      function (v) { running = null; return v; },
      function () { running = null; return "retry"; }
    );
    return running;
  }

  self.ynOffline = { replay: replay, all: all, put: put, drop: drop };
  if (typeof document === "undefined" || !self.indexedDB || !self.fetch) return; // the worker

  // --- the page --------------------------------------------------------------------------------
  if (!document.getElementById("offline-queue")) return;
  var T = document.getElementById("offline-queue").dataset;
  var user = parseInt(T.user, 10), USED = "yn-offline-keys";
  config.csrf = T.csrf;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }
  function box() { return document.getElementById("offline-queue"); }
  function say(text) {
    var note = box().querySelector("[role=status]");
    note.textContent = text;
    note.hidden = !text;
    if (text) box().hidden = false;
  }

  function newKey() {
    var bytes = self.crypto.getRandomValues(new Uint8Array(16));
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  function used() {
    try { return JSON.parse(self.localStorage.getItem(USED)) || []; } catch (e) { return []; }
  }
  function remember(key) {
    try { self.localStorage.setItem(USED, JSON.stringify(used().concat([key]).slice(-500))); } catch (e) { /* full */ }
  }
  function freshKeys() {
    var seen = used();
    document.querySelectorAll("form[data-offline] input[name=key]").forEach(function (input) {
      if (seen.indexOf(input.value) >= 0) input.value = newKey();
    });
  }

  function counter() {
    var link = document.getElementById("offline-count"), nav = document.querySelector(".top-nav");
    if (!link && nav) {
      link = el("a", "", T.tCount + " ");
      link.id = "offline-count";
      link.href = "#offline-queue";
      link.appendChild(el("b", "cart-count"));
      nav.insertBefore(link, nav.firstChild);
    }
    return link;
  }

  function render() {
    return all().then(function (items) {
      var list = box().querySelector("ul"), open = 0, old = Date.now() - 12 * 3600 * 1000;
      var mine = items.filter(function (i) {
        if (i.user !== user) return false;
        if (i.state === "sent" && i.sentAt < old) { drop(i.id); return false; }
        return true;
      });
      list.textContent = "";
      mine.forEach(function (i) {
        if (i.state !== "sent") open++;
        var li = el("li"), meta = el("div", "meta", new Date(i.queuedAt).toLocaleString(document.documentElement.lang, {
          month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false
        }) + " · ");
        li.dataset.state = i.state;
        meta.appendChild(el("span", i.state === "sent" ? "tag" : "tag off", T["t" + i.state[0].toUpperCase() + i.state.slice(1)]));
        li.appendChild(el("div", "title", i.label));
        li.appendChild(meta);
        if (i.message && i.state !== "sent") li.appendChild(el("p", i.state === "refused" ? "field-error" : "hint", i.message));
        if (i.location) {
          var a = el("a", "", T.tOpen);
          a.href = i.location;
          meta.appendChild(document.createTextNode(" · "));
          meta.appendChild(a);
        }
        if (i.state !== "waiting") {
          var b = el("button", "button small secondary", T.tRemove);
          b.type = "button";
          b.dataset.remove = i.id;
          meta.appendChild(document.createTextNode(" "));
          meta.appendChild(b);
        }
        list.appendChild(li);
      });
      // "Kept on this phone" no longer holds once nothing waits (the worker may have sent them).
      var note = box().querySelector("[role=status]");
      if (note.textContent === T.tSaved && !mine.some(function (i) { return i.state === "waiting"; })) say(T.tDone);
      // Shown while something waits or was refused, or just after a message; sent ones go quiet.
      box().hidden = !open && box().querySelector("[role=status]").hidden;
      var link = counter();
      if (link) {
        link.style.display = open ? "" : "none";
        link.lastChild.textContent = open;
      }
      return mine;
    });
  }

  function sendNow() {
    if (!navigator.onLine) return render();
    return replay().then(function (outcome) {
      if (outcome === "login") say(T.tLogin);
      else if (outcome === "done") say(T.tDone);
      return render();
    });
  }

  function label(form) {
    return (form.getAttribute("data-offline-label") || document.title).replace(/\{(\w+)\}/g, function (_, name) {
      var f = form.elements[name];
      if (f && f.tagName === "SELECT") return f.selectedIndex > 0 ? f.options[f.selectedIndex].text : "";
      return f && f.value ? f.value : "";
    }).trim();
  }

  function busy(form, on) {
    form.querySelectorAll("button, input[type=submit]").forEach(function (b) { b.disabled = on; });
  }

  function queue(form, item) {
    return put(item).then(function () {
      form.reset();
      freshKeys();
      busy(form, false);
      say(T.tSaved);
      render();
      box().scrollIntoView();
      if (self.navigator.serviceWorker) {
        navigator.serviceWorker.ready.then(function (reg) { return reg.sync && reg.sync.register(CHANNEL); }).catch(function () {});
      }
    }, function (error) {
      busy(form, false);
      say(String(error));
    });
  }

  // The server's page for a refused live submission, without a second request.
  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html"), main = document.querySelector("main");
    var fresh = doc.querySelector("main");
    if (!main || !fresh) return document.documentElement.replaceWith(doc.documentElement);
    document.title = doc.title;
    main.replaceWith(document.adoptNode(fresh));
    freshKeys();
    render();
    var alert = document.querySelector("main [role=alert]");
    if (alert) alert.scrollIntoView();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target, by = event.submitter;
    if (event.defaultPrevented || !form.matches("form[data-offline]") || form.method !== "post") return;
    if (!form.querySelector("input[name=key]")) return;
    if (by && by.hasAttribute("data-offline-skip")) {
      if (!navigator.onLine) {
        event.preventDefault();
        say(T.tOnlineOnly);
        box().scrollIntoView();
      }
      return;
    }
    event.preventDefault();
    var data = new FormData(form);
    if (by && by.name) data.append(by.name, by.value);
    var item = {
      user: user,
      action: by && by.hasAttribute("formaction") ? by.formAction : form.action,
      key: data.get("key"),
      label: label(form),
      queuedAt: Date.now(),
      state: "waiting",
      tries: 0,
      message: ""
    };
    if (form.enctype === "multipart/form-data") {
      item.entries = [];
      data.forEach(function (value, name) { item.entries.push([name, value, value.name || ""]); });
    } else {
      item.body = new URLSearchParams(data).toString();
    }
    remember(item.key);
    if (!navigator.onLine) return queue(form, item);
    busy(form, true);
    send(item.action, { method: "POST", body: payload(item), headers: { "X-Offline-Submit": "live" } }).then(
      function (r) {
        var to = r.headers.get("X-Offline-Location");
        if (r.status === 401) { // logged out meanwhile: kept, sent after logging in again
          var login = new URL(to || "/", location.href);
          login.searchParams.set("next", location.pathname + location.search);
          return queue(form, item).then(function () { location.assign(login.href); });
        }
        if (to !== null) return location.assign(to || location.href);
        if (r.status === 502 || r.status === 503 || r.status === 504) return queue(form, item);
        return r.text().then(swap);
      },
      function () { return queue(form, item); }
    );
  });

  document.addEventListener("click", function (event) {
    var id = event.target.getAttribute && event.target.getAttribute("data-remove");
    if (id) drop(parseInt(id, 10)).then(render);
  });

  // A replay changes the queue item after item: draw the list at most every 300 ms.
  var drawing = null;
  onChange = function () {
    drawing = drawing || setTimeout(function () { drawing = null; render(); }, 300);
  };
  if (channel) channel.onmessage = onChange;
  self.addEventListener("online", sendNow);
  self.addEventListener("pageshow", function () { freshKeys(); sendNow(); });
  setInterval(function () {
    all().then(function (items) {
      if (items.some(function (i) { return i.user === user && i.state === "waiting"; })) sendNow();
    });
  }, 30000);
  if (navigator.serviceWorker) navigator.serviceWorker.register(T.sw).catch(function () {});
})(self);
