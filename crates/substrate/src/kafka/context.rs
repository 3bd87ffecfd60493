//! A consumer context that makes rebalances and commit failures visible in the logs, and
//! starts every partition it is given unpaused.

use rdkafka::ClientContext;
use rdkafka::consumer::{ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::TopicPartitionList;

/// Logs partition assignments, revocations and failed commits; resumes assigned partitions.
#[derive(Debug, Clone, Default)]
pub struct LoggingContext;

impl ClientContext for LoggingContext {}

impl ConsumerContext for LoggingContext {
    fn pre_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = %describe(tpl), "partitions assigned")
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = %describe(tpl), "partitions revoked")
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
    }

    /// librdkafka keeps a partition's pause flag when the member loses the partition (its
    /// membership ended, e.g. across a broker restart) and is given it again, so a partition
    /// paused by a consume loop that was waiting at that moment would never be fetched again.
    /// Whatever is assigned starts unpaused; a loop still waiting pauses it again as soon as
    /// it fetches from it (consume.rs, `wait_paused`).
    fn post_rebalance(
        &self,
        consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        if let Rebalance::Assign(tpl) = rebalance {
            if tpl.count() == 0 {
                return;
            }
            if let Err(error) = rdkafka::consumer::Consumer::resume(consumer, tpl) {
                tracing::warn!(%error, partitions = %describe(tpl), "could not resume assigned partitions");
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::debug!(offsets = %describe(offsets), "offsets committed"),
            // "No offset" just means nothing new was stored since the last commit.
            Err(rdkafka::error::KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::NoOffset,
            )) => {}
            Err(error) => {
                tracing::warn!(%error, offsets = %describe(offsets), "offset commit failed")
            }
        }
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| format!("{}[{}]@{:?}", e.topic(), e.partition(), e.offset()))
        .collect::<Vec<_>>()
        .join(",")
}
