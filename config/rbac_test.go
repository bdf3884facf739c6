package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// rbacReasons is every permission the manager's ClusterRole grants, each with the reason
// an effector, a sensor or a watch needs it. config/rbac/role.yaml is generated from the
// +kubebuilder:rbac markers; a permission added there without a reason here fails the
// test, and so does a reason left here for a permission that is gone.
var rbacReasons = map[string]string{
	`"" configmaps get`:                                           "object sensors read one ConfigMap with a direct get (other kinds need a rule of their own)",
	`"" secrets get`:                                              "webhook actions read the Secret named in headersFrom with get only; Secrets are never listed or watched",
	`"" serviceaccounts get`:                                      "the tenant's rights: an app acts as spec.serviceAccountName (or --default-service-account), which must exist; one get, kept for --authorization-cache-ttl, never a list or watch",
	`"" namespaces get`:                                           "ClusterHealingPolicy namespaceSelector: the cache reads the app's namespace labels",
	`"" namespaces list`:                                          "the namespace informer behind those reads",
	`"" namespaces watch`:                                         "the namespace informer behind those reads",
	`"" nodes get`:                                                "cordonNode/drainNode read the node they act on",
	`"" nodes list`:                                               "the node guard counts NotReady and cordoned nodes",
	`"" nodes watch`:                                              "a node turning Ready again releases a held node action",
	`"" nodes patch`:                                              "cordonNode sets spec.unschedulable and stamps the action id; the node controller lifts that cordon once the node is healthy again",
	`"" pods get`:                                                 "the monitor and effectors read pods",
	`"" pods list`:                                                "component sensors come from the pod informer",
	`"" pods watch`:                                               "component sensors are event-driven: the pod informer",
	`"" pods patch`:                                               "restartPods and drainNode stamp the action id on a pod before evicting it",
	`"" pods delete`:                                              "a StatefulSet rollback deletes the pods stuck unready on the revision it left, which the StatefulSet controller would wait for forever (its documented forced rollback)",
	`"" pods/eviction create`:                                     "restartPods and drainNode evict through the eviction API so PodDisruptionBudgets hold",
	`"" services get`:                                             "failover reads the Service it points at the primary",
	`"" services list`:                                            "the Service informer behind failover",
	`"" services watch`:                                           "a Service changed by hand brings its failover policy back",
	`"" services patch`:                                           "failover applies the Service's spec.selector as field manager homeostat",
	`apps deployments get`:                                        "component sensors read the workload",
	`apps deployments list`:                                       "the workload informer",
	`apps deployments watch`:                                      "workload changes are events",
	`apps deployments patch`:                                      "rolloutRestart and rollback patch the template; every effector stamps the action id",
	`apps replicasets get`:                                        "a Deployment's pods are found through its ReplicaSets",
	`apps replicasets list`:                                       "the ReplicaSet informer (rollback reads old revisions)",
	`apps replicasets watch`:                                      "ReplicaSet changes are events",
	`apps replicasets patch`:                                      "scale stamps the action id on a ReplicaSet component",
	`apps statefulsets get`:                                       "component sensors read the workload",
	`apps statefulsets list`:                                      "the workload informer",
	`apps statefulsets watch`:                                     "workload changes are events",
	`apps statefulsets patch`:                                     "rolloutRestart and rollback patch the template; effectors stamp the action id",
	`apps controllerrevisions get`:                                "a StatefulSet rollback reads the revision it returns to",
	`apps controllerrevisions list`:                               "the ControllerRevision informer: a StatefulSet's revisions, for rollback",
	`apps controllerrevisions watch`:                              "the ControllerRevision informer behind those reads",
	`apps deployments/scale patch`:                                "scale and autoscale apply spec.replicas on the /scale subresource",
	`apps replicasets/scale patch`:                                "scale and autoscale apply spec.replicas on the /scale subresource",
	`apps statefulsets/scale patch`:                               "scale and autoscale apply spec.replicas on the /scale subresource",
	`authorization.k8s.io subjectaccessreviews create`:            "the tenant's rights: before an action, an object sensor's read or a webhook's Secret, a SubjectAccessReview asks whether the app's ServiceAccount may; asking grants the manager nothing",
	`autonomic.homeostat.dev autonomicapps get`:                   "the app reconciler",
	`autonomic.homeostat.dev autonomicapps list`:                  "the app informer",
	`autonomic.homeostat.dev autonomicapps watch`:                 "the app informer",
	`autonomic.homeostat.dev clusterhealingpolicies get`:          "shared policies are merged into the apps they select",
	`autonomic.homeostat.dev clusterhealingpolicies list`:         "the shared policy informer",
	`autonomic.homeostat.dev clusterhealingpolicies watch`:        "an edit reaches every selected app at once",
	`autonomic.homeostat.dev healingpolicies get`:                 "shared policies are merged into the apps they select",
	`autonomic.homeostat.dev healingpolicies list`:                "the shared policy informer",
	`autonomic.homeostat.dev healingpolicies watch`:               "an edit reaches every selected app at once",
	`autonomic.homeostat.dev autonomicapps/status get`:            "status is the ledger",
	`autonomic.homeostat.dev autonomicapps/status patch`:          "intents and results are written to status",
	`autonomic.homeostat.dev clusterhealingpolicies/status get`:   "matched apps and conflicts",
	`autonomic.homeostat.dev clusterhealingpolicies/status patch`: "matched apps and conflicts",
	`autonomic.homeostat.dev healingpolicies/status get`:          "matched apps and conflicts",
	`autonomic.homeostat.dev healingpolicies/status patch`:        "matched apps and conflicts",
	`autoscaling horizontalpodautoscalers get`:                    "an autoscale policy defers to an HPA on the same workload (Conflict)",
	`autoscaling horizontalpodautoscalers list`:                   "the HPA informer behind that check",
	`autoscaling horizontalpodautoscalers watch`:                  "the HPA informer behind that check",
	`batch jobs create`:                                           "runJob creates a Job owned by the app",
	`batch jobs get`:                                              "runJob awaits its Job's outcome",
	`batch jobs list`:                                             "the informer of labelled Jobs",
	`batch jobs watch`:                                            "a finished Job brings its app back",
	`events.k8s.io events create`:                                 "every decision and action leaves an Event",
	`events.k8s.io events patch`:                                  "repeated Events are aggregated",
	`keda.sh scaledobjects get`:                                   "an autoscale policy defers to a KEDA ScaledObject on the same workload",
	`keda.sh scaledobjects list`:                                  "the ScaledObject informer behind that check (only when KEDA is installed)",
	`keda.sh scaledobjects watch`:                                 "the ScaledObject informer behind that check",
	`metrics.k8s.io pods get`:                                     "resource sensors read pod metrics",
	`metrics.k8s.io pods list`:                                    "resource sensors list the component's pod metrics",
}

// escalations are the verbs that would let the manager gain rights it was not given:
// escalate and bind (grant a role beyond its own rights), impersonate (act as another
// user, group or ServiceAccount). Homeostat acts with the tenant's rights by asking a
// SubjectAccessReview before each request, with its own identity; it never impersonates
// (an impersonate rule cannot be limited to the tenants' ServiceAccounts, which are named
// by the tenants in namespaces that come and go), so no role of config/rbac grants any.
var escalations = []string{"escalate", "bind", "impersonate"}

// TestNoRoleLetsTheManagerEscalate reads every Role and ClusterRole of config/rbac: none
// grants an escalation verb, a write of RBAC objects or a ServiceAccount token.
func TestNoRoleLetsTheManagerEscalate(t *testing.T) {
	files, err := filepath.Glob("rbac/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no RBAC files in config/rbac: %v", err)
	}
	roles := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---") {
			var role rbacv1.ClusterRole // a Role has the same rules
			if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if role.Kind != "Role" && role.Kind != "ClusterRole" {
				continue
			}
			roles++
			for i, r := range role.Rules {
				where := fmt.Sprintf("%s %s %s rule %d", f, role.Kind, role.Name, i)
				for _, v := range escalations {
					if slices.Contains(r.Verbs, v) {
						t.Errorf("%s grants %s: the manager must not be able to escalate", where, v)
					}
				}
				if slices.Contains(r.APIGroups, "rbac.authorization.k8s.io") && slices.ContainsFunc(r.Verbs, func(v string) bool {
					return v != "get" && v != "list" && v != "watch"
				}) {
					t.Errorf("%s writes RBAC objects", where)
				}
				if slices.Contains(r.Resources, "serviceaccounts/token") {
					t.Errorf("%s lets the manager mint ServiceAccount tokens", where)
				}
			}
		}
	}
	if roles < 5 {
		t.Errorf("read %d roles from config/rbac; expected the manager's and its helpers'", roles)
	}
}

func TestEveryManagerPermissionHasAReason(t *testing.T) {
	data, err := os.ReadFile("rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	granted := map[string]bool{}
	for _, r := range role.Rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %+v: the manager role uses no resourceNames or nonResourceURLs; say why before adding one", r)
		}
		for _, g := range r.APIGroups {
			if g == "" {
				g = `""`
			}
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if g == "*" || res == "*" || v == "*" {
						t.Errorf("wildcard in %s %s %s: grant exactly what an effector needs", g, res, v)
					}
					granted[fmt.Sprintf("%s %s %s", g, res, v)] = true
				}
			}
		}
	}
	var missing, stale []string
	for k := range granted {
		if rbacReasons[k] == "" {
			missing = append(missing, k)
		}
	}
	for k := range rbacReasons {
		if !granted[k] {
			stale = append(stale, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(stale)
	if len(missing) > 0 {
		t.Errorf("config/rbac/role.yaml grants permissions without a reason; add each to rbacReasons in config/rbac_test.go with why the operator needs it, or remove the marker:\n  %s",
			strings.Join(missing, "\n  "))
	}
	if len(stale) > 0 {
		t.Errorf("rbacReasons explains permissions role.yaml no longer grants; remove them:\n  %s", strings.Join(stale, "\n  "))
	}
	for _, k := range []string{`"" secrets list`, `"" secrets watch`} {
		if granted[k] {
			t.Errorf("%s is granted: the operator must read Secrets with get only", k)
		}
	}
}
