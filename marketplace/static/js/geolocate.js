// "Use my position" on the point form: fills latitude and longitude from the phone's GPS.
// Progressive enhancement: without JavaScript or geolocation the button stays hidden and the
// fields are typed; the server checks the numbers either way.
(function () {
  "use strict";
  if (!("geolocation" in navigator)) return;
  document.querySelectorAll("[data-geolocate]").forEach(function (button) {
    var form = button.closest("form");
    var box = button.closest(".geolocate");
    var status = box.querySelector("[data-geolocate-status]");
    var lat = form.querySelector("input[name=latitude]");
    var lon = form.querySelector("input[name=longitude]");
    if (!lat || !lon) return;
    box.hidden = false;
    button.addEventListener("click", function () {
      status.textContent = status.dataset.waiting;
      button.disabled = true;
      navigator.geolocation.getCurrentPosition(
        function (pos) {
          lat.value = pos.coords.latitude.toFixed(6);
          lon.value = pos.coords.longitude.toFixed(6);
          status.textContent = status.dataset.done;
          button.disabled = false;
        },
        function () {
          status.textContent = status.dataset.failed;
          button.disabled = false;
        },
        { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 }
      );
    });
  });
})();
