"""Outbound delivery: ``channel.outbound_requested`` in, a Telegram or Slack call out, one
``channel.delivery_reported`` per record (docs/outbound-delivery.md).

``rendering``, ``retry`` and ``reports`` are pure; ``providers`` speaks HTTP, ``store``
Postgres, ``subscriber`` Kafka; ``worker`` handles one record with them.
"""
