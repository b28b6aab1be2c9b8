/* Suggestions as the buyer types: fills the search box's <datalist> from the suggest API.
   Only an enhancement: without JavaScript the form still searches, and a search that finds
   nothing offers suggestions as links. */
(function () {
  var input = document.querySelector("form.search input[name=q]");
  var list = document.getElementById("q-suggest");
  if (!input || !list || !window.fetch) return;
  var url = input.form.getAttribute("data-suggest"), timer, last = "";
  input.addEventListener("input", function () {
    clearTimeout(timer);
    var q = input.value.trim();
    if (!q || q === last) return;
    timer = setTimeout(function () {
      last = q;
      fetch(url + "?q=" + encodeURIComponent(q))
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (names) {
          list.textContent = "";
          names.forEach(function (n) {
            var o = document.createElement("option");
            o.value = n;
            list.appendChild(o);
          });
        })
        .catch(function () {});
    }, 250);
  });
})();
