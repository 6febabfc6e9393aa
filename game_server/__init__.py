"""The workshop game server: the customer, scoring, storage and the web pages."""

__version__ = "0.1.0"
