"""Delivery channels: SMS providers, email over SMTP and the in-app inbox."""
