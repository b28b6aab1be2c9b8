"""Tools for running the product locally (`make run`) and for the test harness: the local Stripe
server (`devtools.localstripe`) with the flows localstripe lacks (wallets, declines, idempotency).

Never imported by `marketplace`, `services` or `domain` (an import contract in setup.cfg checks
it): the product talks to whatever STRIPE_API_BASE names and cannot tell this server from Stripe.
"""
