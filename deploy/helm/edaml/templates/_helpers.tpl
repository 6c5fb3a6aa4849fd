{{- define "edaml.fullname" -}}
{{- printf "%s" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "edaml.labels" -}}
app.kubernetes.io/name: edaml
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "edaml.selector" -}}
app.kubernetes.io/name: edaml
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "edaml.trackingUri" -}}
{{- if .Values.mlflow.trackingUri -}}
{{ .Values.mlflow.trackingUri }}
{{- else -}}
http://{{ include "edaml.fullname" . }}-mlflow:{{ .Values.mlflow.port }}
{{- end -}}
{{- end -}}

{{/* What every edaml client container needs: the cluster, its client properties, MLflow. */}}
{{- define "edaml.env" -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: EDAML_KAFKA_PROPERTIES
  value: /etc/edaml/kafka/client.properties
- name: EDAML_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.saslPasswordSecret }}
      key: password
- name: EDAML_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: EDAML_PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: EDAML_KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: EDAML_KAFKA_MIN_INSYNC_REPLICAS
  value: {{ .Values.kafka.minInsyncReplicas | quote }}
- name: MLFLOW_TRACKING_URI
  value: {{ include "edaml.trackingUri" . | quote }}
{{- end -}}

{{- define "edaml.kafkaVolumeMounts" -}}
- name: kafka-client
  mountPath: /etc/edaml/kafka
  readOnly: true
- name: kafka-ca
  mountPath: /etc/edaml/kafka-ca
  readOnly: true
{{- end -}}

{{- define "edaml.kafkaVolumes" -}}
- name: kafka-client
  configMap:
    name: {{ include "edaml.fullname" . }}-kafka-client
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.caSecret }}
{{- end -}}

{{- define "edaml.securityContext" -}}
runAsNonRoot: true
runAsUser: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: false
capabilities:
  drop: ["ALL"]
{{- end -}}
