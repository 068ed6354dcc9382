{{/* The frr-composer image (agent and webhook): repository:tag, the tag defaulting to appVersion. */}}
{{- define "frr-composer.image" -}}
{{ .Values.frrk8s.image.repository }}:{{ .Values.frrk8s.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The FRR image. */}}
{{- define "frr-composer.frrImage" -}}
{{ .Values.frrk8s.frr.image.repository }}:{{ .Values.frrk8s.frr.image.tag }}
{{- end }}

{{/* `imagePullPolicy: X` when a pull policy is given (arg: the image values). */}}
{{- define "frr-composer.pullPolicy" -}}
{{- with .pullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
{{- end }}

{{/* nodeSelector and tolerations of the agent's and FRR's DaemonSets (they run together). */}}
{{- define "frr-composer.placement" -}}
nodeSelector:
  {{- toYaml (merge (dict) .Values.frrk8s.nodeSelector (dict "kubernetes.io/os" "linux")) | nindent 2 }}
{{- with .Values.frrk8s.tolerations }}
tolerations:
  {{- toYaml . | nindent 0 }}
{{- end }}
{{- end }}
