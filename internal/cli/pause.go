package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// PauseResult is what pause and resume print with -o json|yaml.
type PauseResult struct {
	Namespace string `json:"namespace"`
	App       string `json:"app"`
	// Paused is whether the app carries the paused annotation now.
	Paused bool `json:"paused"`
	// Changed is false when the app already was as asked.
	Changed bool `json:"changed"`
	// Reason is the annotation's value: why it was paused.
	Reason string `json:"reason,omitempty"`
}

func newPauseCommand(o *Options, pause bool) *cobra.Command {
	reason := ""
	cmd := &cobra.Command{
		Use:   "resume APP",
		Short: "Remove the paused annotation: the app's policies act again",
		Long: `resume removes the autonomic.homeostat.dev/paused annotation from the app. Its policies
act again, under spec.mode, at the next reconcile.`,
		Example: "  kubectl homeostat resume shop -n shop",
		Args:    oneApp,
	}
	if pause {
		cmd.Use = "pause APP"
		cmd.Short = "Set the paused annotation: the app takes no action until resumed"
		cmd.Long = `pause sets the autonomic.homeostat.dev/paused annotation on the app. Homeostat keeps
observing it and explaining what it would do, and takes no action until the annotation is
removed (kubectl homeostat resume). The annotation is metadata, not spec: a GitOps tool that
syncs the app's spec does not undo it, and it is accepted while the manager is down.`
		cmd.Example = "  kubectl homeostat pause shop -n shop --reason 'database migration until 14:00'"
		cmd.Flags().StringVar(&reason, "reason", "", "Why the app is paused; the annotation's value (\"true\" when empty).")
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		app, err := o.getApp(ctx, args[0])
		if err != nil {
			return err
		}
		res := PauseResult{Namespace: app.Namespace, App: app.Name, Paused: pause}
		cur, has := app.Annotations[v1alpha1.PausedAnnotation]
		value := reason
		if value == "" {
			value = "true"
		}
		var patch any
		switch {
		case pause && (!has || (reason != "" && cur != reason)):
			patch = map[string]any{"metadata": map[string]any{"annotations": map[string]any{v1alpha1.PausedAnnotation: value}}}
			res.Reason = value
		case pause:
			res.Reason = cur
		case has:
			patch = map[string]any{"metadata": map[string]any{"annotations": map[string]any{v1alpha1.PausedAnnotation: nil}}}
		}
		if patch != nil {
			b, err := json.Marshal(patch)
			if err != nil {
				return err
			}
			c, err := o.kube()
			if err != nil {
				return err
			}
			if err := c.Patch(ctx, app, client.RawPatch("application/merge-patch+json", b)); err != nil {
				return apiError(err, fmt.Sprintf("annotating AutonomicApp %s/%s", app.Namespace, app.Name))
			}
			res.Changed = true
		}
		return o.print(res, func(t *Text) { renderPause(t, res) })
	}
	return cmd
}

func renderPause(t *Text, r PauseResult) {
	ref := fmt.Sprintf("autonomicapp %s/%s", r.Namespace, r.App)
	switch {
	case r.Paused && r.Changed:
		t.Linef(0, 2, "%s paused (%s). Homeostat keeps watching it and takes no action until `kubectl homeostat resume %s -n %s`.",
			ref, r.Reason, r.App, r.Namespace)
	case r.Paused:
		t.Linef(0, 2, "%s was already paused (%s).", ref, r.Reason)
	case r.Changed:
		t.Linef(0, 2, "%s resumed: its policies act again under spec.mode.", ref)
	default:
		t.Linef(0, 2, "%s was not paused by the annotation; nothing changed.", ref)
	}
}
