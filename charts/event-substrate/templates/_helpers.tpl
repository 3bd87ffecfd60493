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

{{/* Image reference. Call with (dict "root" $ "image" .Values.apiGateway.image). */}}
{{- define "event-substrate.image" -}}
{{- $registry := .root.Values.global.imageRegistry -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" $registry) .image.repository (toString .image.tag) -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (toString .image.tag) -}}
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

{{/* Environment shared by the three services: broker, SASL user, registry, telemetry. Call
     with (dict "root" $ "kafka" .Values.<service>.kafka). */}}
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
      name: {{ .kafka.existingSecret }}
      key: {{ .kafka.passwordKey }}
- name: SCHEMA_REGISTRY_URL
  value: {{ .root.Values.schemaRegistry.url | quote }}
{{- with .root.Values.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .root.Values.telemetry.logFilter }}
- name: LOG_LEVEL
  value: {{ . | quote }}
{{- end }}
- name: SUPABASE_DB_URL
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secrets.postgres.existingSecret }}
      key: {{ .root.Values.secrets.postgres.urlKey }}
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

{{/* Liveness on /healthz and readiness on /readyz of the named container port. */}}
{{- define "event-substrate.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  initialDelaySeconds: 5
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  initialDelaySeconds: 5
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
