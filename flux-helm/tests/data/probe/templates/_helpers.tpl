{{- define "probe.name" -}}
{{ .Chart.Name }}-{{ .Release.Name | trunc 20 }}
{{- end -}}
{{- define "probe.labels" -}}
app: {{ include "probe.name" . }}
chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}
