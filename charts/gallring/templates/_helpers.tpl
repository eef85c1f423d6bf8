{{/*
The chart name, overridable with nameOverride.
*/}}
{{- define "gallring.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name prefix of every resource: fullnameOverride, else <release>-<chart> (or the
release name alone when it already contains the chart name). Kept to 55 characters so that
suffixes such as "-metrics" and "-leader-election" still fit in 63.
*/}}
{{- define "gallring.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 55 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "gallring.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "gallring.labels" -}}
helm.sh/chart: {{ include "gallring.chart" . }}
{{ include "gallring.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gallring
{{- end }}

{{/*
Labels that select the operator pods (immutable in a Deployment: never add to them).
*/}}
{{- define "gallring.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gallring.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "gallring.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gallring.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The metrics Service's name. The ServiceMonitor makes it the `job` label of the scraped
series, which GallringOperatorDown selects on.
*/}}
{{- define "gallring.metricsServiceName" -}}
{{- printf "%s-metrics" (include "gallring.fullname" .) }}
{{- end }}

{{/*
The operator image: repository@digest when a digest is set, else repository:tag (tag
defaulting to the chart's appVersion).
*/}}
{{- define "gallring.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}
