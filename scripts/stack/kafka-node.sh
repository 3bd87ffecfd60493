#!/usr/bin/env bash
# Runs one single-node Apache Kafka (KRaft: broker and controller in one process) in the
# foreground, on 127.0.0.1. The stack runs the shared broker with it; tests that must stop and
# restart a broker run a private one the same way.
#
#   scripts/stack/kafka-node.sh DATA_DIR PORT [CONTROLLER_PORT]
#
# DATA_DIR holds the broker's server.properties and its log directory; it is formatted (a new
# cluster id) the first time and reused afterwards, so a restart keeps every topic and offset.
# CONTROLLER_PORT defaults to PORT + 1. The classpath is .local/jars/kafka (scripts/stack/install.sh
# fills it from scripts/stack/pom.xml); KAFKA_JARS_DIR points elsewhere. KAFKA_HEAP_OPTS bounds the
# JVM heap (default -Xms128m -Xmx512m). Needs Java 17 or newer (JAVA_HOME or java on PATH).
#
# KAFKA_SECURITY=sasl_ssl starts the node as the production profile runs it (scripts/stack/
# profile.sh): the client listener is SASL_SSL only (SCRAM-SHA-256), the controller listener SSL
# with client certificates, ACLs enforced by the StandardAuthorizer with no access for a principal
# without a grant. It needs KAFKA_TLS_DIR (server-keystore.pem, ca.pem) and
# KAFKA_SUPERUSER_PASSWORD: the superuser's SCRAM credential is written when the data directory is
# formatted (the broker authenticates as it to itself); the other users and their ACLs are the
# bootstrap's (scripts/stack/bootstrap.py). A data directory keeps the security it was formatted
# with: give each mode its own.
set -euo pipefail

[[ $# -ge 2 ]] || {
    echo "usage: $0 DATA_DIR PORT [CONTROLLER_PORT]" >&2
    exit 2
}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
data_dir="$(mkdir -p "$1" && cd "$1" && pwd)"
port="$2"
controller_port="${3:-$((port + 1))}"
jars_dir="${KAFKA_JARS_DIR:-$repo_root/.local/jars/kafka}"

java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
command -v "$java" >/dev/null || {
    echo "kafka-node: no java (set JAVA_HOME or put Java 17+ on PATH)" >&2
    exit 1
}
java_major="$("$java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
[[ "${java_major%%.*}" -ge 17 ]] || {
    echo "kafka-node: Kafka 4 needs Java 17 or newer, $java is $java_major" >&2
    exit 1
}
compgen -G "$jars_dir/kafka_2.13-*.jar" >/dev/null || {
    echo "kafka-node: no Kafka jars in $jars_dir (run scripts/stack/install.sh)" >&2
    exit 1
}

# Settings for a single development node. Replication factors are 1 because there is one node;
# the initial rebalance delay is 0 so that a consumer group forms at once instead of after 3 s;
# internal topics get fewer partitions than the defaults (50) so a fresh node is ready quickly.
# Topics are never created implicitly: the bootstrap and the tests create what they use.
security="${KAFKA_SECURITY:-plaintext}"
case "$security" in
plaintext)
    listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
    advertised="PLAINTEXT://127.0.0.1:$port"
    security_properties="inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    format_scram=()
    ;;
sasl_ssl)
    tls_dir="${KAFKA_TLS_DIR:?KAFKA_SECURITY=sasl_ssl needs KAFKA_TLS_DIR}"
    super_password="${KAFKA_SUPERUSER_PASSWORD:?KAFKA_SECURITY=sasl_ssl needs KAFKA_SUPERUSER_PASSWORD}"
    for file in server-keystore.pem ca.pem; do
        [[ -s "$tls_dir/$file" ]] || {
            echo "kafka-node: $tls_dir/$file is missing" >&2
            exit 1
        }
    done
    listeners="SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
    advertised="SASL_SSL://127.0.0.1:$port"
    # The broker's own connections (transaction markers, the controller) authenticate as
    # superuser over SASL_SSL and with its certificate (principal CN=127.0.0.1) over SSL.
    security_properties="inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
sasl.enabled.mechanisms=SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"superuser\" password=\"$super_password\";
listener.name.controller.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location=$tls_dir/server-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls_dir/ca.pem
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:superuser;User:CN=127.0.0.1"
    format_scram=(--add-scram "SCRAM-SHA-256=[name=superuser,password=$super_password]")
    ;;
*)
    echo "kafka-node: KAFKA_SECURITY must be plaintext or sasl_ssl, not $security" >&2
    exit 2
    ;;
esac

# The file holds the superuser's password in the production mode: owner only.
umask 077
cat >"$data_dir/server.properties" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
$security_properties
log.dirs=$data_dir/logs
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPERTIES

classpath="$jars_dir/*"
if [[ ! -f "$data_dir/logs/meta.properties" ]]; then
    # A KRaft cluster id is 16 random bytes in URL-safe base64 without padding. One in 64 starts
    # with '-', which the format tool's argument parser takes for an option ("--cluster-id:
    # expected one argument"; a fresh CI clone met it): draw again until it does not.
    cluster_id="-"
    while [[ "$cluster_id" == -* ]]; do
        cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    "$java" -cp "$classpath" -Dlog4j2.configurationFile="$here/kafka-log4j2.properties" \
        kafka.tools.StorageTool format --cluster-id "$cluster_id" \
        --config "$data_dir/server.properties" --ignore-formatted "${format_scram[@]}"
fi

# exec: the caller's pid is the broker's, so stopping it (SIGTERM) shuts the broker down cleanly.
# C1 only (TieredStopAtLevel=1): the broker's start is mostly JIT work, 19 s of CPU with C2 on
# two cores against 10 s; a local broker's message rates never need C2's peak code.
# shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM options
exec "$java" ${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$here/kafka-log4j2.properties" \
    -cp "$classpath" kafka.Kafka "$data_dir/server.properties"
