"""Kafka: topic admin, producers, the BatchConsumer, the DLQ and the broker epoch (aiokafka)."""
