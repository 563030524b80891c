"""The Odradek broker: a trio server speaking the Kafka protocol over `protocol/` and `storage/`."""
