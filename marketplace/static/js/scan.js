/* The staff's scan page (templates/scans/index.html). Without JavaScript the form posts as it is:
   a USB scanner types the label into the focused field and presses Enter.
   With it:
   - each scan carries when it was made (scanned_at), so a scan queued offline
     (static/js/offline.js) keeps its time when it is sent later;
   - after a scan is queued (the form is reset) the label field is empty and focused again;
   - on a phone with the BarcodeDetector API, "use the camera" reads a Code 128 barcode or a QR
     code (the printed label) with getUserMedia and sends the form. */
(function () {
  "use strict";
  var form = document.getElementById("scan-form");
  if (!form) return;
  var field = form.elements.label, stamp = form.elements.scanned_at;

  function focus() { field.focus(); field.select(); }

  form.addEventListener("submit", function () {
    field.value = field.value.trim();
    if (stamp) stamp.value = new Date().toISOString();
  });
  form.addEventListener("reset", function () { setTimeout(focus, 0); });

  var button = document.getElementById("scan-camera"), video = document.getElementById("scan-video");
  if (!button || !video || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  var stream = null, timer = null;

  function stop() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    video.hidden = true;
  }

  window.BarcodeDetector.getSupportedFormats().then(function (formats) {
    var wanted = ["code_128", "qr_code"].filter(function (f) { return formats.indexOf(f) >= 0; });
    if (!wanted.length) return;
    var detector = new window.BarcodeDetector({ formats: wanted });
    button.parentNode.hidden = false;

    function look() {
      detector.detect(video).then(function (codes) {
        var text = codes.length ? String(codes[0].rawValue || "").trim() : "";
        if (!text) { timer = setTimeout(look, 250); return; }
        stop();
        field.value = text.slice(0, 40);
        if (form.requestSubmit) form.requestSubmit(); else form.submit();
      }, function () { timer = setTimeout(look, 500); });
    }

    button.addEventListener("click", function () {
      if (stream) { stop(); return; }
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (s) {
        stream = s;
        video.srcObject = s;
        video.hidden = false;
        return video.play().then(look);
      }).catch(function () { stop(); focus(); });
    });
  }).catch(function () {});
})();
