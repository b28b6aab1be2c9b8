/* The card form of the pay page. Stripe.js turns the card into a payment method in the browser
   (the card number never reaches our server); the form then posts its id, and the server
   confirms the payment. When the bank wants to check the buyer (3-D Secure), the page comes
   back with the client secret and Stripe.js runs that check, then goes to the return page.
   Without JavaScript the page says that card payment needs it. */
(function () {
  var box = document.getElementById("card-pay");
  if (!box) return;
  var errors = box.querySelector(".card-errors");

  function fail(message) {
    errors.textContent = message || box.getAttribute("data-msg-failed");
    errors.hidden = false;
    box.hidden = false;
  }

  if (typeof window.Stripe !== "function") return fail();
  var stripe = window.Stripe(box.getAttribute("data-key"), { locale: box.getAttribute("data-locale") });
  var returnUrl = box.getAttribute("data-return");

  var secret = box.getAttribute("data-secret");
  if (secret) {
    stripe.confirmCardPayment(secret).then(function (result) {
      if (result && result.error) return fail(result.error.message);
      window.location.href = returnUrl;
    }, function () { fail(); });
    return;
  }

  var form = box.querySelector("form");
  var button = form.querySelector("button[type=submit]");
  var card = stripe.elements().create("card", { hidePostalCode: true });
  card.mount(box.querySelector(".card-element"));
  box.hidden = false;

  // Stripe.js gives a PaymentMethod; localstripe's copy has none, but a token's card serves there.
  function paymentMethodId() {
    return Promise.resolve(stripe.createPaymentMethod({ type: "card", card: card })).then(function (r) {
      if (r && r.paymentMethod) return r.paymentMethod.id;
      if (r && r.error) throw r.error;
      return stripe.createToken(card).then(function (t) {
        if (t && t.token && t.token.card) return t.token.card.id;
        throw (t && t.error) || {};
      });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    errors.hidden = true;
    paymentMethodId().then(function (id) {
      form.elements.payment_method.value = id;
      form.submit();
    }).catch(function (error) {
      button.disabled = false;
      // Stripe's own errors (a wrong number, a declined card) say what is wrong; anything else
      // means the fields were not filled in.
      fail(error && error.type && error.message ? error.message : box.getAttribute("data-msg-incomplete"));
    });
  });
})();
