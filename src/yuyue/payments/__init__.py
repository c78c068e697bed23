"""Payments: orders, attempts, refunds and statements for registration fees.

Booking stays the only writer of appointments: a verified payment calls booking's
`confirm_payment`; a cancelled appointment's money comes back through this context's
refund path."""
