{{- define "soc2-operator.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "soc2-operator.labels" -}}
app.kubernetes.io/name: soc2-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "soc2-operator.selector" -}}
app.kubernetes.io/name: soc2-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "soc2-operator.pvc" -}}
{{- .Values.evidence.sqlite.existingClaim | default (printf "%s-evidence" (include "soc2-operator.name" .)) -}}
{{- end -}}
