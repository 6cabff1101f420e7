"""Record values: the event envelope, its codec and headers, the inbound record, DLQ headers."""
