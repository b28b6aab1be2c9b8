"""Orders: the cart, pricing, the buyer's address book (addresses), placing an order with stock
reservations (checkout), finding orders (lookup), the sub-order state machine, and what buyers,
sellers and staff do with orders (manage)."""
