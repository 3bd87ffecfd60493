#!/usr/bin/env python3
"""Decode Confluent-framed Avro records with confluent-kafka's own deserializer.

An independent implementation for the interop test of `substrate` (Rust): it reads one record
from each topic given on the command line, decodes it with `AvroDeserializer` against the schema
registry, and prints one JSON line per record: {"topic", "schema_id", "value"}. Exits non-zero if a
topic yields nothing before the timeout.
"""

import argparse
import json
import struct
import sys
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("topics", nargs="+")
    args = parser.parse_args()

    deserializer = AvroDeserializer(SchemaRegistryClient({"url": args.registry}))
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"interop-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(args.topics)
    pending = set(args.topics)
    deadline = time.monotonic() + args.timeout
    try:
        while pending and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                print(f"poll error: {message.error()}", file=sys.stderr)
                continue
            if message.topic() not in pending:
                continue
            raw = message.value()
            magic, schema_id = struct.unpack(">bI", raw[:5])
            if magic != 0:
                print(f"{message.topic()}: magic byte {magic}", file=sys.stderr)
                return 1
            value = deserializer(raw, SerializationContext(message.topic(), MessageField.VALUE))
            print(json.dumps({"topic": message.topic(), "schema_id": schema_id, "value": value}))
            pending.discard(message.topic())
    finally:
        consumer.close()
    if pending:
        print(f"no record within {args.timeout}s on: {sorted(pending)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
