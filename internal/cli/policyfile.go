package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"regexp"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/analyze"
	"github.com/homeostat-dev/homeostat/internal/monitor"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// policyFile is what --policy-file holds: one YAML (or JSON) document, either
//
//   - an AutonomicApp manifest: its spec replaces the app's spec (the app keeps its
//     name, namespace and labels), and the shared policies that select the app merge
//     into it as they do into the current spec; or
//   - a HealingPolicy or ClusterHealingPolicy manifest: it is simulated as if applied,
//     replacing the shared policy of the same kind and name or added beside them, and as
//     if it selected the app (a warning says so when its selectors do not), merged into
//     the app's own spec with the manager's merge (plan.Merge): the app's own entries win
//     a name clash, then the higher priority.
type policyFile struct {
	path string
	kind string
	// app is set for an AutonomicApp, shared for a HealingPolicy or ClusterHealingPolicy.
	app    *v1alpha1.AutonomicApp
	shared *plan.SharedPolicy
	// selector and nsSelector are the shared policy's selectors, to warn when they do not
	// select the app.
	selector, nsSelector *metav1.LabelSelector
}

// readPolicyFile reads and checks the file's structure: one document of a Homeostat
// kind, no unknown field, and the rules of the CRD's schema that the replay depends on
// (exactly one member where the API says so, bounds that plan relies on). A problem is a
// usage error naming the file and the field.
func readPolicyFile(path string) (*policyFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError(fmt.Sprintf("--policy-file: %v", err))
	}
	bad := func(format string, args ...any) error {
		return usageError(fmt.Sprintf("--policy-file %s: ", path) + fmt.Sprintf(format, args...))
	}
	doc, err := oneDocument(b)
	if err != nil {
		return nil, bad("%v", err)
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, bad("not a YAML or JSON manifest: %v", err)
	}
	if tm.APIVersion != v1alpha1.GroupVersion.String() {
		return nil, bad("apiVersion is %q; want %s (an AutonomicApp, HealingPolicy or ClusterHealingPolicy)", tm.APIVersion, v1alpha1.GroupVersion)
	}
	pf := &policyFile{path: path, kind: tm.Kind}
	var healing v1alpha1.Healing
	prefix := "spec"
	switch tm.Kind {
	case "AutonomicApp":
		app := &v1alpha1.AutonomicApp{}
		if err := yaml.UnmarshalStrict(doc, app); err != nil {
			return nil, bad("%v", err)
		}
		pf.app = app
		healing = app.Spec.Healing
		if problems := checkComponents(app.Spec.Components); len(problems) > 0 {
			return nil, bad("%s", strings.Join(problems, "; "))
		}
	case "HealingPolicy":
		p := &v1alpha1.HealingPolicy{}
		if err := yaml.UnmarshalStrict(doc, p); err != nil {
			return nil, bad("%v", err)
		}
		pf.shared = &plan.SharedPolicy{Kind: tm.Kind, Namespace: p.Namespace, Name: p.Name, Priority: p.Spec.Priority, Healing: p.Spec.Healing}
		pf.selector = &p.Spec.AppSelector
		healing = p.Spec.Healing
	case "ClusterHealingPolicy":
		p := &v1alpha1.ClusterHealingPolicy{}
		if err := yaml.UnmarshalStrict(doc, p); err != nil {
			return nil, bad("%v", err)
		}
		pf.shared = &plan.SharedPolicy{Kind: tm.Kind, Name: p.Name, Priority: p.Spec.Priority, Healing: p.Spec.Healing, Enforced: p.Spec.Enforced}
		pf.selector, pf.nsSelector = &p.Spec.AppSelector, p.Spec.NamespaceSelector
		healing = p.Spec.Healing
	default:
		return nil, bad("kind is %q; want AutonomicApp, HealingPolicy or ClusterHealingPolicy", tm.Kind)
	}
	if pf.shared != nil && pf.shared.Name == "" {
		return nil, bad("metadata.name: a %s needs a name", tm.Kind)
	}
	if problems := checkHealing(prefix, healing); len(problems) > 0 {
		return nil, bad("%s", strings.Join(problems, "; "))
	}
	return pf, nil
}

// oneDocument returns the file's only non-empty document.
func oneDocument(b []byte) ([]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	switch len(docs) {
	case 0:
		return nil, errors.New("the file is empty")
	case 1:
		return docs[0], nil
	}
	return nil, fmt.Errorf("the file holds %d documents; give one AutonomicApp, HealingPolicy or ClusterHealingPolicy", len(docs))
}

var commentLine = regexp.MustCompile(`(?m)^\s*#.*$`)

func stripComments(b []byte) []byte { return commentLine.ReplaceAll(b, nil) }

// view is the spec the edited run replays: the app with the file applied, merged with
// the shared policies that select it; warnings say what the file's application assumed.
func (pf *policyFile) view(app *v1alpha1.AutonomicApp, shared []plan.SharedPolicy, nsLabels map[string]string) (*v1alpha1.AutonomicApp, plan.Merged, []string) {
	var warnings []string
	own := app.DeepCopy()
	if pf.app != nil {
		if n := pf.app.Name; n != "" && n != app.Name || pf.app.Namespace != "" && pf.app.Namespace != app.Namespace {
			warnings = append(warnings, fmt.Sprintf("%s is AutonomicApp %s/%s; its spec is simulated as the spec of %s/%s",
				pf.path, pf.app.Namespace, pf.app.Name, app.Namespace, app.Name))
		}
		own.Spec = *pf.app.Spec.DeepCopy()
	} else {
		p := *pf.shared
		if p.Kind == "HealingPolicy" && p.Namespace == "" {
			p.Namespace = app.Namespace
		}
		if p.Kind == "HealingPolicy" && p.Namespace != app.Namespace {
			warnings = append(warnings, fmt.Sprintf("%s is a HealingPolicy of namespace %s, which never selects an app of namespace %s; "+
				"it is simulated as if it were in %s", pf.path, p.Namespace, app.Namespace, app.Namespace))
			p.Namespace = app.Namespace
		}
		if !monitor.Selects(pf.selector, app.Labels) || (pf.nsSelector != nil && nsLabels != nil && !monitor.Selects(pf.nsSelector, nsLabels)) {
			warnings = append(warnings, fmt.Sprintf("%s %s does not select AutonomicApp %s/%s; it is simulated as if it did",
				p.Kind, p.Name, app.Namespace, app.Name))
		}
		replaced := false
		for i, s := range shared {
			if s.Kind == p.Kind && s.Namespace == p.Namespace && s.Name == p.Name {
				shared[i], replaced = p, true
			}
		}
		if !replaced {
			shared = append(shared, p)
		}
	}
	view, merged := plan.MergedView(own, shared)
	return view, merged, warnings
}

// fileErrors turns the validation errors of the edited view into a usage error naming
// the file, with each field as the file names it when the entry came from the file.
func (pf *policyFile) fileErrors(view *v1alpha1.AutonomicApp, merged plan.Merged, errs []analyze.FieldError) error {
	msgs := make([]string, 0, len(errs))
	for _, fe := range errs {
		msgs = append(msgs, pf.fileField(view, merged, fe.Field)+": "+fe.Message)
	}
	what := "the app's spec"
	if pf.shared != nil {
		what = "the app's spec merged with it"
	}
	return usageError(fmt.Sprintf("--policy-file %s: %s is invalid: %s", pf.path, what, strings.Join(msgs, "; ")))
}

var entryField = regexp.MustCompile(`^spec\.(sensors|symptoms|policies)\[(\d+)\](.*)$`)

// fileField maps a field of the merged view back to the shared policy file, when the
// entry came from it; otherwise it says the field is of the app's merged spec.
func (pf *policyFile) fileField(view *v1alpha1.AutonomicApp, merged plan.Merged, field string) string {
	m := entryField.FindStringSubmatch(field)
	if m == nil {
		if pf.shared == nil {
			return field
		}
		return field + " (of the app's merged spec)"
	}
	i, _ := strconv.Atoi(m[2])
	if pf.shared == nil {
		// The app's own entries keep their places at the head of the merged lists; an
		// entry a shared policy added is named by its source.
		if src := merged.Sources[entryKind(m[1])+"/"+entryName(view, m[1], i)]; src != "" {
			return field + " (from " + src + ")"
		}
		return field
	}
	name := entryName(view, m[1], i)
	var names []string
	h := pf.shared.Healing
	switch m[1] {
	case "sensors":
		for _, s := range h.Sensors {
			names = append(names, s.Name)
		}
	case "symptoms":
		for _, s := range h.Symptoms {
			names = append(names, s.Name)
		}
	default:
		for _, p := range h.Policies {
			names = append(names, p.Name)
		}
	}
	src := merged.Sources[entryKind(m[1])+"/"+name]
	if strings.HasPrefix(src, pf.shared.Source()) {
		for j, n := range names {
			if n == name {
				return fmt.Sprintf("spec.%s[%d]%s", m[1], j, m[3])
			}
		}
	}
	return field + " (of the app's merged spec)"
}

// entryKind is plan's entry kind of a spec list: sensors -> sensor.
func entryKind(list string) string {
	return map[string]string{"sensors": plan.EntrySensor, "symptoms": plan.EntrySymptom, "policies": plan.EntryPolicy}[list]
}

// entryName is the name of the i-th entry of a list of the view's spec, or "".
func entryName(view *v1alpha1.AutonomicApp, list string, i int) string {
	s := view.Spec
	switch {
	case list == "sensors" && i < len(s.Sensors):
		return s.Sensors[i].Name
	case list == "symptoms" && i < len(s.Symptoms):
		return s.Symptoms[i].Name
	case list == "policies" && i < len(s.Policies):
		return s.Policies[i].Name
	}
	return ""
}

// checkComponents checks the CRD's rule that each component sets exactly one of
// workloadRef and appRef.
func checkComponents(cs []v1alpha1.Component) []string {
	var out []string
	if len(cs) == 0 {
		out = append(out, "spec.components: an app needs at least one component")
	}
	for i, c := range cs {
		if (c.WorkloadRef == nil) == (c.AppRef == nil) {
			out = append(out, fmt.Sprintf("spec.components[%d]: exactly one of workloadRef, appRef must be set", i))
		}
	}
	return out
}

// checkHealing checks the rules of the CRD's schema that the replay depends on: the
// API server enforces them on apply, and a file never applied has not met them. The
// rest of the schema (patterns, lengths) is the API server's: `kubectl apply
// --dry-run=server -f FILE` checks all of it.
func checkHealing(prefix string, h v1alpha1.Healing) []string {
	var out []string
	add := func(field, msg string) { out = append(out, field+": "+msg) }
	for i, s := range h.Sensors {
		f := fmt.Sprintf("%s.sensors[%d]", prefix, i)
		if countSet(s.Prometheus != nil, s.Resource != nil, s.HTTP != nil, s.Object != nil) != 1 {
			add(f, "exactly one of prometheus, resource, http, object must be set")
		}
		if s.Interval != nil && s.Interval.Duration < 1e9 {
			add(f+".interval", "interval must be at least 1s")
		}
	}
	for i, p := range h.Policies {
		f := fmt.Sprintf("%s.policies[%d]", prefix, i)
		if countSet(p.Remediate != nil, p.Autoscale != nil, p.Failover != nil) != 1 {
			add(f, "exactly one of remediate, autoscale, failover must be set")
			continue
		}
		switch {
		case p.Remediate != nil:
			r := p.Remediate
			if len(r.When) == 0 {
				add(f+".remediate.when", "name at least one symptom")
			}
			if len(r.Steps) == 0 || len(r.Steps) > 8 {
				add(f+".remediate.steps", "a ladder has 1 to 8 steps")
			}
			for j, st := range r.Steps {
				out = append(out, checkAction(fmt.Sprintf("%s.remediate.steps[%d].action", f, j), st.Action)...)
			}
			if r.GiveUp != nil && (r.GiveUp.Episodes < 1 || r.GiveUp.Within.Duration <= 0) {
				add(f+".remediate.giveUp", "episodes must be at least 1 and within positive")
			}
		case p.Autoscale != nil:
			a := p.Autoscale
			if a.MaxReplicas < 1 {
				add(f+".autoscale.maxReplicas", "maxReplicas must be at least 1")
			}
			if a.MinReplicas != nil && (*a.MinReplicas < 0 || *a.MinReplicas > a.MaxReplicas) {
				add(f+".autoscale.minReplicas", "minReplicas must be from 0 to maxReplicas")
			}
			if len(a.Metrics) == 0 || len(a.Metrics) > 8 {
				add(f+".autoscale.metrics", "an autoscaler has 1 to 8 metrics")
			}
			for j, m := range a.Metrics {
				out = append(out, checkMetric(fmt.Sprintf("%s.autoscale.metrics[%d]", f, j), m)...)
			}
			if o := a.OnSensorFailure; o != nil && o.Mode == v1alpha1.SensorFailureFallback && o.Replicas == nil {
				add(f+".autoscale.onSensorFailure.replicas", "replicas is required when mode is Fallback")
			}
		case p.Failover != nil:
			if len(p.Failover.Candidates) < 2 {
				add(f+".failover.candidates", "a failover needs at least 2 candidates")
			}
		}
	}
	if g := h.Guards; g != nil {
		f := prefix + ".guards"
		if g.Cooldown != nil && g.Cooldown.Duration < 0 {
			add(f+".cooldown", "cooldown must not be negative")
		}
		if m := g.MaxActions; m != nil {
			if m.Count < 1 || m.Count > 50 {
				add(f+".maxActions.count", "count must be from 1 to 50")
			}
			if m.Per.Duration <= 0 {
				add(f+".maxActions.per", "per must be positive")
			}
		}
	}
	return out
}

func checkMetric(f string, m v1alpha1.AutoscaleMetric) []string {
	var out []string
	switch {
	case countSet(m.Target != nil, m.Band != nil) != 1:
		out = append(out, f+": exactly one of target, band must be set")
	case m.Band != nil:
		lower, errL := strconv.ParseFloat(m.Band.Lower, 64)
		upper, errU := strconv.ParseFloat(m.Band.Upper, 64)
		if errL != nil || errU != nil || lower < 0 || !(lower < upper) {
			out = append(out, f+".band: lower and upper must be decimals with lower < upper")
		}
	default:
		t := m.Target
		if countSet(t.Value != nil, t.AverageValue != nil, t.AverageUtilization != nil) != 1 {
			out = append(out, f+".target: exactly one of value, averageValue, averageUtilization must be set")
		} else if t.AverageUtilization != nil && *t.AverageUtilization < 1 {
			out = append(out, f+".target.averageUtilization: must be at least 1")
		}
	}
	return out
}

func checkAction(f string, a v1alpha1.Action) []string {
	n := countSet(a.RestartPods != nil, a.RolloutRestart != nil, a.Rollback != nil, a.Scale != nil, a.Failover != nil,
		a.CordonNode != nil, a.DrainNode != nil, a.RunJob != nil, a.Webhook != nil, a.Notify != nil)
	if n != 1 {
		return []string{f + ": exactly one of restartPods, rolloutRestart, rollback, scale, failover, cordonNode, drainNode, runJob, webhook, notify must be set"}
	}
	if s := a.Scale; s != nil {
		if countSet(s.Replicas != nil, s.Delta != nil, s.Factor != nil) != 1 {
			return []string{f + ".scale: exactly one of replicas, delta, factor must be set"}
		}
		if s.Factor != nil {
			if r, ok := new(big.Rat).SetString(*s.Factor); !ok || r.Sign() <= 0 {
				return []string{f + ".scale.factor: factor must be a positive decimal"}
			}
		}
	}
	return nil
}

func countSet(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
