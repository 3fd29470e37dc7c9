"""Readers and the stream: JSON Lines, Kafka, land files, ledgers, demo generators."""
