-- ClickHouse objects of the unified event stream (spec 5). Idempotent: every statement is
-- CREATE ... IF NOT EXISTS. Run at the server's first start (docker-compose mounts this file
-- into /docker-entrypoint-initdb.d/) or again with `clickhouse-client --multiquery < init.sql`.
--
--   internal.platform.unified.events (Kafka, AvroConfluent)
--       -> default.kafka_unified_events           Kafka engine, consumer group clickhouse-consumer
--       -> default.unified_events_mv              parses event_time, skips broken messages
--       -> default.unified_events                 ReplacingMergeTree, one row per event
--       -> default.unified_events_errors_mv       broken messages and unparsable times
--       -> default.unified_events_errors          kept 30 days for inspection
--
-- Flink writes the topic with at-least-once replays possible, so the same event can arrive more
-- than once: ReplacingMergeTree collapses rows with an equal sorting key (which ends with
-- event_id) at merge time; read with FINAL (or GROUP BY event_id) for exact counts.

CREATE TABLE IF NOT EXISTS default.unified_events
(
    event_id   String,
    event_time DateTime64(3, 'UTC'),
    event_type String,
    user_id    String,
    -- Nullable: a signout of a deleted user carries no email (spec 13.8).
    email      Nullable(String),
    device_id  Nullable(String),
    user_agent Nullable(String),
    ip_address Nullable(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (user_id, event_type, event_time, event_id);

CREATE TABLE IF NOT EXISTS default.unified_events_errors
(
    received_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC'),
    topic       String,
    partition   UInt64,
    offset      UInt64,
    error       String,
    raw_message String
)
ENGINE = MergeTree
ORDER BY received_at
TTL toDateTime(received_at) + INTERVAL 30 DAY;

-- The consumer. Messages that cannot be decoded do not stop the stream: with
-- kafka_handle_error_mode = 'stream' they arrive with the virtual columns _error and
-- _raw_message set, and the errors view below keeps them.
CREATE TABLE IF NOT EXISTS default.kafka_unified_events
(
    event_id   String,
    event_time String,
    event_type String,
    user_id    String,
    email      Nullable(String),
    device_id  Nullable(String),
    user_agent Nullable(String),
    ip_address Nullable(String)
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = 'redpanda:29092',
    kafka_topic_list = 'internal.platform.unified.events',
    kafka_group_name = 'clickhouse-consumer',
    kafka_format = 'AvroConfluent',
    format_avro_schema_registry_url = 'http://schema-registry:8081',
    kafka_num_consumers = 1,
    kafka_handle_error_mode = 'stream';

CREATE MATERIALIZED VIEW IF NOT EXISTS default.unified_events_mv
TO default.unified_events
AS
SELECT
    event_id,
    assumeNotNull(parsed_time) AS event_time,
    event_type,
    user_id,
    email,
    device_id,
    user_agent,
    ip_address
FROM
(
    -- event_time is an ISO-8601 string on the wire; best-effort parsing accepts the offsets
    -- and fractions Flink writes. The inner alias keeps the outer event_time unambiguous.
    SELECT
        event_id,
        parseDateTime64BestEffortOrNull(event_time, 3, 'UTC') AS parsed_time,
        event_type,
        user_id,
        email,
        device_id,
        user_agent,
        ip_address,
        _error AS decode_error
    FROM default.kafka_unified_events
)
WHERE length(decode_error) = 0
  AND parsed_time IS NOT NULL;

CREATE MATERIALIZED VIEW IF NOT EXISTS default.unified_events_errors_mv
TO default.unified_events_errors
AS
SELECT
    _topic AS topic,
    _partition AS partition,
    _offset AS offset,
    if(length(_error) > 0, _error, concat('unparsable event_time: ', event_time)) AS error,
    if(length(_error) > 0, _raw_message, concat('event_id=', event_id)) AS raw_message
FROM default.kafka_unified_events
WHERE length(_error) > 0
   OR parseDateTime64BestEffortOrNull(event_time, 3, 'UTC') IS NULL;
