{{/* Chart name, truncated to the 63 characters a label value may have. */}}
{{- define "event-substrate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "event-substrate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. Call with (dict "root" $ "component" "api-gateway"). */}}
{{- define "event-substrate.labels" -}}
helm.sh/chart: {{ include "event-substrate.chart" .root }}
{{ include "event-substrate.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: event-substrate
{{- if .root.Chart.AppVersion }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{- end }}
app: {{ .component }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels (immutable once deployed). */}}
{{- define "event-substrate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "event-substrate.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Image reference. Call with (dict "root" $ "image" .Values.apiGateway.image). The tag is the
     image's own, else global.imageTag, else the chart's appVersion: the version CI pushes for a
     release, so the default never means "whatever was pushed last" (the schema rejects latest).
     An image with a `registry` key (third-party, e.g. the bootstrap Job's Redpanda) keeps it;
     the images of this project get global.imageRegistry. */}}
{{- define "event-substrate.image" -}}
{{- $registry := .root.Values.global.imageRegistry -}}
{{- if hasKey .image "registry" -}}
{{- $registry = .image.registry -}}
{{- end -}}
{{- $tag := toString (.image.tag | default .root.Values.global.imageTag | default .root.Chart.AppVersion) -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" $registry) .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "event-substrate.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Environment shared by the three services: broker (SASL user, TLS), registry (basic auth when
     schemaRegistry.auth is on), telemetry, database.
     Call with (dict "root" $ "kafka" .Values.<service>.kafka "postgres" .Values.<service>.postgres
     "passwordKey" .Values.secrets.postgres.<service>PasswordKey). The SASL password is the key
     named after the user in the Kafka Secret. The database URL carries no password (it is built
     from the postgres section, the one place of the address, and the service's own role);
     sqlx reads the password from PGPASSWORD, the role's key in the Postgres Secret. */}}
{{- define "event-substrate.serviceEnv" -}}
- name: REDPANDA_BROKERS
  value: {{ .root.Values.kafka.brokers | quote }}
- name: KAFKA_SASL_MECHANISM
  value: {{ .root.Values.kafka.saslMechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ .kafka.username | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secrets.kafka.existingSecret }}
      key: {{ .kafka.username }}
- name: SCHEMA_REGISTRY_URL
  value: {{ .root.Values.schemaRegistry.url | quote }}
{{- if .root.Values.schemaRegistry.auth.enabled }}
{{- /* basic auth on every registry request, as the service's Kafka user */}}
- name: SCHEMA_REGISTRY_USERNAME
  value: {{ .kafka.username | quote }}
- name: SCHEMA_REGISTRY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secrets.schemaRegistry.existingSecret }}
      key: {{ .kafka.username }}
{{- end }}
{{- if .root.Values.kafka.tls.enabled }}
- name: APP__KAFKA__TLS
  value: "true"
{{- if (include "event-substrate.kafkaCaVolume" .root) }}
- name: APP__KAFKA__SSL_CA_FILE
  value: /etc/event-substrate/kafka-ca/ca.crt
{{- end }}
{{- end }}
{{- with .root.Values.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .root.Values.telemetry.logFilter }}
- name: LOG_LEVEL
  value: {{ . | quote }}
{{- end }}
- name: SUPABASE_DB_URL
  value: {{ include "event-substrate.postgresUrl" (dict "root" .root "user" .postgres.user) | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secrets.postgres.existingSecret }}
      key: {{ .passwordKey }}
{{- end -}}

{{/* The volume of the brokers' CA (kafka.tls.ca: a Secret's or ConfigMap's key as the file
     ca.crt), when TLS is on and a CA is named; else nothing. Call with the root context. */}}
{{- define "event-substrate.kafkaCaVolume" -}}
{{- $tls := .Values.kafka.tls -}}
{{- if and $tls.enabled (or $tls.ca.secretName $tls.ca.configMapName) }}
- name: kafka-ca
  {{- if $tls.ca.secretName }}
  secret:
    secretName: {{ $tls.ca.secretName }}
  {{- else }}
  configMap:
    name: {{ $tls.ca.configMapName }}
  {{- end }}
    items:
      - key: {{ $tls.ca.key }}
        path: ca.crt
{{- end }}
{{- end -}}

{{/* Its mount in a service container (APP__KAFKA__SSL_CA_FILE names the file). */}}
{{- define "event-substrate.kafkaCaMount" -}}
{{- if (include "event-substrate.kafkaCaVolume" .) }}
- name: kafka-ca
  mountPath: /etc/event-substrate/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* postgres://user@host:port/database?sslmode=… of a service, as its role (no password:
     PGPASSWORD). Call with (dict "root" $ "user" .Values.<service>.postgres.user). */}}
{{- define "event-substrate.postgresUrl" -}}
{{- $pg := .root.Values.postgres -}}
{{- printf "postgres://%s@%s:%v/%s?sslmode=%s" (urlquery .user) $pg.host $pg.port $pg.database $pg.sslmode -}}
{{- end -}}

{{/* The Flink JDBC sinks' URL: same database, with the original connect/socket timeouts. */}}
{{- define "event-substrate.jdbcUrl" -}}
{{- $pg := .Values.postgres -}}
{{- printf "jdbc:postgresql://%s:%v/%s?sslmode=%s&tcpKeepAlive=true&connectTimeout=10&socketTimeout=30" $pg.host $pg.port $pg.database $pg.sslmode -}}
{{- end -}}

{{/* The object store as a URL (Flink's s3.endpoint): the scheme follows objectStore.useSsl. */}}
{{- define "event-substrate.objectStoreUrl" -}}
{{- printf "%s://%s" (ternary "https" "http" .Values.objectStore.useSsl) .Values.objectStore.endpoint -}}
{{- end -}}

{{/* Object-store settings of the gateway and the media-service. */}}
{{- define "event-substrate.objectStoreEnv" -}}
- name: MINIO_ENDPOINT
  value: {{ .Values.objectStore.endpoint | quote }}
- name: MINIO_PUBLIC_ENDPOINT
  value: {{ .Values.objectStore.publicEndpoint | quote }}
- name: MINIO_BUCKET
  value: {{ .Values.objectStore.bucket | quote }}
- name: MINIO_USE_SSL
  value: {{ .Values.objectStore.useSsl | quote }}
- name: MINIO_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.objectStore.existingSecret }}
      key: {{ .Values.secrets.objectStore.accessKeyKey }}
- name: MINIO_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.objectStore.existingSecret }}
      key: {{ .Values.secrets.objectStore.secretKeyKey }}
{{- end -}}

{{/* Probes of the named container port: startup and liveness on /healthz (the process
     serves), readiness on /readyz (broker, registry, database... reachable). The startup probe
     gives a slow start (cold caches, a registry that answers late) a minute before liveness
     may restart the pod, without delaying liveness for the rest of its life. */}}
{{- define "event-substrate.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 2
  timeoutSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
{{- end -}}

{{/* Scheduling fields of a pod spec. Call with a service's values. */}}
{{- define "event-substrate.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}


{{/* The replica count of a Deployment, unless an autoscaler owns it (a rendered count would
     reset the autoscaler's choice on every upgrade). Call with a service's values. */}}
{{- define "event-substrate.replicas" -}}
{{- if not (and .autoscaling .autoscaling.enabled) -}}
replicas: {{ .replicas }}
{{- end -}}
{{- end -}}

{{/* ---- NetworkPolicies (templates/network-policies.yaml) ---------------------------------- */}}

{{/* "true" when a component's policies are rendered: the global switch networkPolicy.enabled
     and the component's own <component>.networkPolicy.enabled (default true); else nothing.
     Call with (dict "root" $ "values" .Values.apiGateway). */}}
{{- define "event-substrate.netpol.enabled" -}}
{{- if and .root.Values.networkPolicy.enabled .values.enabled (dig "networkPolicy" "enabled" true .values) -}}
true
{{- end -}}
{{- end -}}

{{/* The port of an address, host:port or a URL; without one, .default.
     Call with (dict "address" "redpanda-0.redpanda:9093" "default" 9092). */}}
{{- define "event-substrate.netpol.port" -}}
{{- $host := .address -}}
{{- if contains "://" $host -}}
{{- $host = (urlParse $host).host -}}
{{- end -}}
{{- regexFind ":[0-9]+$" $host | trimPrefix ":" | default (toString .default) -}}
{{- end -}}

{{/* One rule of a NetworkPolicy: `from` (ingress) or `to` (egress) the peers, on TCP ports.
     No peers: no rule at all (an empty `from`/`to` would mean every address).
     Call with (dict "direction" "to" "peers" $peers "ports" (list 9092)). */}}
{{- define "event-substrate.netpol.rule" -}}
{{- if .peers }}
- {{ .direction }}:
    {{- toYaml .peers | nindent 4 }}
  ports:
    {{- range (.ports | uniq) }}
    - port: {{ . | int }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end -}}

{{/* Egress to one destination of networkPolicy.egress: its `to` peers, on its `ports` if given,
     else on the ports of the address. Call with (dict "target" $egress.kafka "ports" (list 9092)). */}}
{{- define "event-substrate.netpol.egress" -}}
{{- include "event-substrate.netpol.rule" (dict "direction" "to" "peers" .target.to "ports" (.target.ports | default .ports)) -}}
{{- end -}}

{{/* Egress to the cluster DNS (networkPolicy.dns), UDP and TCP 53. Call with the root context. */}}
{{- define "event-substrate.netpol.dns" -}}
{{- with .Values.networkPolicy.dns.to }}
- to:
    {{- toYaml . | nindent 4 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}
{{- end -}}

{{/* A NetworkPolicy of the pods labelled .selector, for both directions: the rules are rendered
     YAML lists (ingress, egress), and a direction without rules is denied, so a policy without
     any is the component's default deny. hook: created before the bootstrap Job (pre-install
     hooks run before ordinary resources exist) and removed with it once it succeeded.
     Call with (dict "root" $ "component" "api-gateway" "name" "api-gateway-allow"
     "selector" $labels "ingress" $rules "egress" $rules "hook" false). */}}
{{- define "event-substrate.netpol.policy" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "event-substrate.labels" (dict "root" .root "component" .component) | nindent 4 }}
  {{- if .hook }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
  {{- end }}
spec:
  podSelector:
    matchLabels:
      {{- toYaml .selector | nindent 6 }}
  policyTypes: [Ingress, Egress]
  {{- with (.ingress | default "" | trim) }}
  ingress:
    {{- . | nindent 4 }}
  {{- end }}
  {{- with (.egress | default "" | trim) }}
  egress:
    {{- . | nindent 4 }}
  {{- end }}
{{- end -}}
