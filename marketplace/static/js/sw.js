/* The service worker of the village agent's pages, served at /sw.js (marketplace/web/offline
   prepends self.OFFLINE_CONFIG: version, core, static, pages, offline, csrf, clear).
   - Static files (/static/…, versioned URLs): cache first.
   - The agent's pages (config.pages prefixes, GET navigations): network first; a page the server
     marks X-Offline-Cacheable (a logged-in agent's own page) is kept, and shown when the network
     fails or has not answered in 8 s; a page never opened shows config.offline. POST answers are
     never cached; a POST to log in or out (config.clear) empties the page cache, so nobody sees
     another user's pages.
   - Caches are named by version; activating a new worker deletes the old ones.
   - Background Sync ("yn-offline") replays the offline queue (offline.js, imported here). */
"use strict";
var C = self.OFFLINE_CONFIG, PAGES = "yn-pages-" + C.version, STATIC = "yn-static-" + C.version;
var WAIT_MS = 8000, MAX_PAGES = 60;
importScripts(C.core);

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(PAGES).then(function (cache) { return cache.add(C.offline); })
      .catch(function () {})
      .then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (n) {
        return n.indexOf("yn-") === 0 && n !== PAGES && n !== STATIC;
      }).map(function (n) { return caches.delete(n); }));
    }).then(function () { return self.clients.claim(); })
  );
});

function isPage(path) {
  return C.pages.some(function (prefix) { return path.indexOf(prefix) === 0; });
}

function keep(request, response) {
  return caches.open(PAGES).then(function (cache) {
    if (response.status !== 200) return;
    if (response.headers.get("X-Offline-Cacheable") !== "1") return cache.delete(request);
    return cache.put(request, response).then(function () {
      return cache.keys();
    }).then(function (keys) {
      var extra = keys.length - MAX_PAGES;
      return Promise.all(keys.slice(0, Math.max(0, extra)).map(function (k) { return cache.delete(k); }))
        .then(function () { return cache.match(C.offline); })
        .then(function (hit) { return hit || cache.add(C.offline); });
    });
  }).catch(function () {});
}

function fromNetwork(event) {
  var request = event.request;
  var network = fetch(request).then(function (response) {
    event.waitUntil(keep(request, response.clone()));
    return response;
  });
  var copy = function () {
    return caches.open(PAGES).then(function (cache) { return cache.match(request); });
  };
  var slow = new Promise(function (resolve) {
    setTimeout(function () { copy().then(function (hit) { if (hit) resolve(hit); }); }, WAIT_MS);
  });
  var offline = network.catch(function () {
    return copy().then(function (hit) {
      return hit || caches.open(PAGES).then(function (cache) { return cache.match(C.offline); });
    }).then(function (hit) { return hit || Response.error(); });
  });
  return Promise.race([offline, slow]);
}

function fromCache(request) {
  return caches.open(STATIC).then(function (cache) {
    return cache.match(request).then(function (hit) {
      return hit || fetch(request).then(function (response) {
        if (response.ok) cache.put(request, response.clone());
        return response;
      });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request, url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method !== "GET") {
    if (C.clear.indexOf(url.pathname) >= 0) event.waitUntil(caches.delete(PAGES));
    return; // never answered from or kept in a cache
  }
  if (url.pathname.indexOf(C.static) === 0) return event.respondWith(fromCache(request));
  if (request.mode === "navigate" && isPage(url.pathname)) event.respondWith(fromNetwork(event));
});

self.addEventListener("sync", function (event) {
  if (event.tag !== "yn-offline") return;
  event.waitUntil(self.ynOffline.replay().then(function (outcome) {
    if (outcome === "offline" || outcome === "retry") throw new Error(outcome); // try again later
  }));
});
