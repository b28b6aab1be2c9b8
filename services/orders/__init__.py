"""Orders: the cart, pricing, placing an order with stock reservations, the sub-order state
machine, and what buyers, sellers and staff do with orders (services.orders.manage)."""
