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

{{/*
Name of the RBAC objects that are cluster-scoped or live outside the release namespace
(ClusterRoles, ClusterRoleBindings, the Role in watchNamespace, the Secret Roles):
<fullname>-<release namespace>. Helm release names are unique only within a namespace, so
the namespace keeps two releases of the same name (or one fullnameOverride) in different
namespaces from claiming the same object.
*/}}
{{- define "gallring.rbacName" -}}
{{- printf "%s-%s" (include "gallring.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
The namespaces where the operator reads credential Secrets, comma-separated (empty: none, or
every namespace with secrets.clusterWide): secrets.namespaces, else watchNamespace when set.
Both the Secret Roles and `--secret-namespaces` come from this one list.
*/}}
{{- define "gallring.secretNamespaces" -}}
{{- if not .Values.secrets.clusterWide }}
{{- if .Values.secrets.namespaces }}
{{- .Values.secrets.namespaces | uniq | join "," }}
{{- else if .Values.watchNamespace }}
{{- .Values.watchNamespace }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The `fail` message when a monitoring.coreos.com/v1 kind is enabled but the cluster does not
serve it. Arguments: a dict with kind, plural and value (the values key that enables it).
*/}}
{{- define "gallring.missingMonitoringAPI" -}}
{{ .value }}=true, but this cluster does not serve monitoring.coreos.com/v1 {{ .kind }} (the CustomResourceDefinition {{ .plural }}.monitoring.coreos.com is not installed). Install the prometheus-operator CRDs first (they come with kube-prometheus-stack, or alone with the prometheus-community/prometheus-operator-crds chart), or set {{ .value }}=false. To render offline with helm template, pass --api-versions monitoring.coreos.com/v1/{{ .kind }}.
{{- end }}

{{/*
Checks of value combinations that values.schema.json cannot express. Renders nothing; fails
the install with a message naming the values to change.
*/}}
{{- define "gallring.validate" -}}
{{- $le := .Values.leaderElection }}
{{- if ge (int $le.renewDeadlineSeconds) (int $le.leaseDurationSeconds) }}
{{- fail (printf "leaderElection.renewDeadlineSeconds (%d) must be less than leaderElection.leaseDurationSeconds (%d): the leader must give up before its Lease can expire and a standby takes over." (int $le.renewDeadlineSeconds) (int $le.leaseDurationSeconds)) }}
{{- end }}
{{- if ge (int $le.retryPeriodSeconds) (int $le.renewDeadlineSeconds) }}
{{- fail (printf "leaderElection.retryPeriodSeconds (%d) must be less than leaderElection.renewDeadlineSeconds (%d): the leader needs more than one attempt to renew its Lease before the deadline." (int $le.retryPeriodSeconds) (int $le.renewDeadlineSeconds)) }}
{{- end }}
{{- if .Values.secrets.clusterWide }}
{{- if .Values.watchNamespace }}
{{- fail (printf "secrets.clusterWide=true with watchNamespace=%s: in namespace mode the operator reads Secrets only in %s, with a Role (no ClusterRole). Unset secrets.clusterWide." .Values.watchNamespace .Values.watchNamespace) }}
{{- end }}
{{- if .Values.secrets.namespaces }}
{{- fail "secrets.clusterWide=true and secrets.namespaces are both set: choose one (clusterWide reads Secrets in every namespace; namespaces lists where they may be read)." }}
{{- end }}
{{- end }}
{{- if .Values.watchNamespace }}
{{- range .Values.secrets.namespaces }}
{{- if ne . $.Values.watchNamespace }}
{{- fail (printf "secrets.namespaces lists %s, but watchNamespace=%s: the operator only reads the Secrets of RecordingBuckets in %s (a secretRef names a Secret in the bucket's namespace). Leave secrets.namespaces empty (it then defaults to %s)." . $.Values.watchNamespace $.Values.watchNamespace $.Values.watchNamespace) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
