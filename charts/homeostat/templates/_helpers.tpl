{{/*
Names. With the release named homeostat (or a fullnameOverride of homeostat), every name
equals the one `kubectl kustomize config/default` renders: homeostat-controller-manager,
homeostat-manager-role, and so on. Another release name prefixes them with
<release>-homeostat- instead, so that two releases never share a cluster-scoped name.
*/}}
{{- define "homeostat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "homeostat.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one object: the full name, a dash and the name config/ gives it. */}}
{{- define "homeostat.objectName" -}}
{{- printf "%s-%s" (include "homeostat.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "homeostat.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The ServiceAccount the manager runs as. */}}
{{- define "homeostat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "homeostat.objectName" (dict "root" . "name" "controller-manager")) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object: what it is part of, who made it and which version. */}}
{{- define "homeostat.labels" -}}
helm.sh/chart: {{ include "homeostat.chart" . }}
app.kubernetes.io/name: {{ include "homeostat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Labels of every object plus extra ones (a dict), which win on a clash:
  include "homeostat.labelsWith" (dict "root" . "extra" .Values.serviceMonitor.labels)
*/}}
{{- define "homeostat.labelsWith" -}}
{{- toYaml (merge (dict) (.extra | default dict) (include "homeostat.labels" .root | fromYaml)) -}}
{{- end -}}

{{/* Labels of the manager's Deployment and Services, which config/ marks control-plane. */}}
{{- define "homeostat.managerLabels" -}}
{{ include "homeostat.labels" . }}
control-plane: controller-manager
{{- end -}}

{{/*
The manager's pods: config/manager selects them with app.kubernetes.io/name and
control-plane; the chart adds the release, so that two releases never select each
other's pods.
*/}}
{{- define "homeostat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "homeostat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end -}}

{{/* The manager's image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "homeostat.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion (toString .Values.image.tag)) -}}
{{- end -}}

{{/*
Whether a value was set: null (and, for strings, "") means "not set, the manager's own
default", so the flag is left out.
*/}}
{{- define "homeostat.isSet" -}}
{{- if and (not (kindIs "invalid" .)) (ne (toString .) "") -}}true{{- end -}}
{{- end -}}

{{/*
The manager's flags, in this order:
1. config/manager's five, so that the defaults render exactly its args;
2. the webhook's two, as config/default-with-webhook appends them;
3. the tenancy flags, in config/lockdown's order, so that lockdown.enabled renders exactly
   config/lockdown's args; a value set explicitly wins over the preset;
4. the other flags of values, then extraArgs.
A value left null leaves its flag out, and the manager uses its own default.
*/}}
{{- define "homeostat.args" -}}
{{- $m := .Values.manager -}}
{{- $lock := .Values.lockdown.enabled -}}
{{- $args := list -}}
{{- $le := .Values.leaderElection -}}
{{- if $le.enabled }}{{ $args = append $args "--leader-elect" }}{{ end -}}
{{- $args = append $args (printf "--health-probe-bind-address=:%v" .Values.health.port) -}}
{{- $args = append $args (printf "--metrics-bind-address=:%v" .Values.metrics.port) -}}
{{- $args = append $args (printf "--enable-webhooks=%t" .Values.webhook.enabled) -}}
{{- if $le.enabled -}}
{{- if include "homeostat.isSet" $le.leaseDuration }}{{ $args = append $args (printf "--leader-elect-lease-duration=%s" $le.leaseDuration) }}{{ end -}}
{{- if include "homeostat.isSet" $le.renewDeadline }}{{ $args = append $args (printf "--leader-elect-renew-deadline=%s" $le.renewDeadline) }}{{ end -}}
{{- if include "homeostat.isSet" $le.retryPeriod }}{{ $args = append $args (printf "--leader-elect-retry-period=%s" $le.retryPeriod) }}{{ end -}}
{{- end -}}
{{- if include "homeostat.isSet" $m.gracefulShutdownTimeout }}{{ $args = append $args (printf "--graceful-shutdown-timeout=%s" $m.gracefulShutdownTimeout) }}{{ end -}}
{{- if .Values.webhook.enabled -}}
{{- $args = append $args (printf "--webhook-port=%v" .Values.webhook.port) -}}
{{- $args = append $args "--webhook-cert-dir=/tmp/k8s-webhook-server/serving-certs" -}}
{{- end -}}
{{- /* 3. The tenancy flags: config/lockdown's preset unless a value says otherwise. */ -}}
{{- $sa := $m.defaultServiceAccount -}}
{{- if and $lock (not (include "homeostat.isSet" $sa)) }}{{ $sa = "homeostat-tenant" }}{{ end -}}
{{- if include "homeostat.isSet" $sa }}{{ $args = append $args (printf "--default-service-account=%s" $sa) }}{{ end -}}
{{- $body := $m.egress.maxResponseBytes -}}
{{- if and $lock (not (include "homeostat.isSet" $body)) }}{{ $body = 262144 }}{{ end -}}
{{- if include "homeostat.isSet" $body }}{{ $args = append $args (printf "--egress-max-response-bytes=%v" (int64 $body)) }}{{ end -}}
{{- $timeout := $m.egress.maxTimeout -}}
{{- if and $lock (not (include "homeostat.isSet" $timeout)) }}{{ $timeout = "10s" }}{{ end -}}
{{- if include "homeostat.isSet" $timeout }}{{ $args = append $args (printf "--egress-max-timeout=%s" $timeout) }}{{ end -}}
{{- $minNs := $m.storm.minNamespaces -}}
{{- if and $lock (not (include "homeostat.isSet" $minNs)) }}{{ $minNs = 2 }}{{ end -}}
{{- if include "homeostat.isSet" $minNs }}{{ $args = append $args (printf "--storm-min-namespaces=%v" (int64 $minNs)) }}{{ end -}}
{{- $kinds := $m.objectSensorClusterKinds -}}
{{- if and $lock (kindIs "invalid" $kinds) }}{{ $kinds = list }}{{ end -}}
{{- if kindIs "slice" $kinds }}{{ $args = append $args (printf "--object-sensor-cluster-kinds=%s" (join "," $kinds)) }}{{ end -}}
{{- $nodeNs := $m.nodeActions.namespaces -}}
{{- if and $lock (kindIs "invalid" $nodeNs) }}{{ $nodeNs = list }}{{ end -}}
{{- if kindIs "slice" $nodeNs }}{{ $args = append $args (printf "--node-actions-namespaces=%s" (join "," $nodeNs)) }}{{ end -}}
{{- $maxNodes := $m.nodeActions.maxNodesPerAction -}}
{{- if and $lock (not (include "homeostat.isSet" $maxNodes)) }}{{ $maxNodes = 1 }}{{ end -}}
{{- if include "homeostat.isSet" $maxNodes }}{{ $args = append $args (printf "--max-nodes-per-action=%v" (int64 $maxNodes)) }}{{ end -}}
{{- $maxUnavail := $m.nodeActions.maxUnavailableNodes -}}
{{- if and $lock (not (include "homeostat.isSet" $maxUnavail)) }}{{ $maxUnavail = "10%" }}{{ end -}}
{{- if include "homeostat.isSet" $maxUnavail }}{{ $args = append $args (printf "--max-unavailable-nodes=%v" $maxUnavail) }}{{ end -}}
{{- /* 4. The rest. */ -}}
{{- with $m.watchNamespaces }}{{ $args = append $args (printf "--watch-namespaces=%s" (join "," .)) }}{{ end -}}
{{- if include "homeostat.isSet" $m.storm.threshold }}{{ $args = append $args (printf "--storm-threshold=%s" $m.storm.threshold) }}{{ end -}}
{{- if include "homeostat.isSet" $m.storm.minUnhealthy }}{{ $args = append $args (printf "--storm-min-unhealthy=%v" (int64 $m.storm.minUnhealthy)) }}{{ end -}}
{{- with $m.egress.allowCIDRs }}{{ $args = append $args (printf "--egress-allow-cidrs=%s" (join "," .)) }}{{ end -}}
{{- with $m.egress.denyCIDRs }}{{ $args = append $args (printf "--egress-deny-cidrs=%s" (join "," .)) }}{{ end -}}
{{- if include "homeostat.isSet" $m.nodeActions.uncordonAfter }}{{ $args = append $args (printf "--node-uncordon-after=%s" $m.nodeActions.uncordonAfter) }}{{ end -}}
{{- if not (kindIs "invalid" $m.sensorGauges) }}{{ $args = append $args (printf "--sensor-gauges=%t" $m.sensorGauges) }}{{ end -}}
{{- if include "homeostat.isSet" $m.maxConcurrentReconciles }}{{ $args = append $args (printf "--max-concurrent-reconciles=%v" (int64 $m.maxConcurrentReconciles)) }}{{ end -}}
{{- if include "homeostat.isSet" $m.logLevel }}{{ $args = append $args (printf "--zap-log-level=%v" $m.logLevel) }}{{ end -}}
{{- range .Values.extraArgs }}{{ $args = append $args . }}{{ end -}}
{{- toYaml $args -}}
{{- end -}}
