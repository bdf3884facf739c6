package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// The acceptance suite of multi-tenancy: a tenant, a team with the built-in edit role
// in its own namespace and nothing else, tries to make Homeostat read, reach or change
// what the team may not, and every attempt is refused with a reason a person can act on,
// while nothing outside the tenant's rights changes. A manager of its own runs with the
// lockdown flags (see startTenancyManager); the suite's manager stands down meanwhile.
// The specs share the manager and the two tenants, not their apps: each deletes what it
// created, so one failing leaves the others to run (ContinueOnFailure).
// docs/security.md lists each attack with the spec that shows it stopped.
//
// Network: every server here listens on loopback (127.0.0.2, and 127.0.0.1 for the one
// the host name attack aims at). The addresses a sensor is refused are refused by the
// egress policy's dial hook, which runs before connect: nothing connects to them.
var _ = Describe("multi-tenancy", Ordered, ContinueOnFailure, Label("tenancy", "kwok"), func() {
	ctx := context.Background()
	var (
		tm                   *managerProcess
		probeAddr, pprofAddr string
		a, b                 *tenant
		// platform is the one namespace the cluster admin lists in
		// --node-actions-namespaces: a platform team's.
		platform *tenant
		// secretValue is tenant-a's database password, in its Secret db-credentials.
		secretValue = fmt.Sprintf("hunter2-%d", time.Now().UnixNano())
	)

	BeforeAll(func() {
		By("standing the suite's manager down: the tenancy manager alone acts")
		mgr.stop()
		DeferCleanup(func() { Expect(mgr.start(nil)).To(Succeed()) })
		platform = newTenant("platform")
		tm, probeAddr, pprofAddr = startTenancyManager(platform.ns)

		By("two tenants, each a team bound to edit in its own namespace")
		a, b = newTenant("tenant-a"), newTenant("tenant-b")
		a.create(deployment(a.ns, "web", "registry.local/shop/web:good", 1))
		bWeb := deployment(b.ns, "web", "registry.local/shop/web:good", 2)
		// One pod of tenant-b on each of the suite's two nodes, so that whichever node a
		// tenant-a app aims at holds a pod of tenant-b.
		bWeb.Spec.Template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		}}
		b.create(bWeb)
		a.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-credentials"},
			StringData: map[string]string{"password": secretValue}})
		waitRunning(a.ns, "web", ":good", 1)
		waitRunning(b.ns, "web", ":good", 2)
	})

	JustAfterEach(func() {
		if CurrentSpecReport().Failed() && tm != nil {
			AddReportEntry("tenancy manager log (tail)", tm.tail(150))
		}
	})

	It("confines the tenant to its namespace: the API server refuses it another tenant's app, cluster policies, nodes, its namespace, RBAC and the manager's Secrets", func() {
		By("the tenant's client authenticates as the team's ServiceAccount")
		cs, err := kubernetes.NewForConfig(a.cfg)
		Expect(err).NotTo(HaveOccurred())
		review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(review.Status.UserInfo.Username).To(Equal(a.user()))

		other := tenancyApp(b.ns, "b-app", sensing())
		b.createApp(other)
		node := getNodeObj(nodeNames()[0])
		forbidden := func(what string, err error) {
			GinkgoHelper()
			Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s: %v", what, err)
			Expect(err.Error()).To(ContainSubstring(`User "%s" cannot`, a.user()), what)
		}
		got := &v1alpha1.AutonomicApp{}
		forbidden("read tenant-b's app", a.c.Get(ctx, client.ObjectKeyFromObject(other), got))
		paused := other.DeepCopy()
		paused.Spec.Mode = v1alpha1.ModePaused
		forbidden("pause tenant-b's app", a.c.Update(ctx, paused))
		forbidden("delete tenant-b's app", a.c.Delete(ctx, other.DeepCopy()))
		forbidden("create an app in tenant-b", a.c.Create(ctx, tenancyApp(b.ns, "planted", sensing())))
		forbidden("create a ClusterHealingPolicy", a.c.Create(ctx, &v1alpha1.ClusterHealingPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "tenant-a-everywhere"},
			Spec: v1alpha1.ClusterHealingPolicySpec{HealingPolicySpec: v1alpha1.HealingPolicySpec{
				Healing: actingOnce(notify("x"))}}}))
		forbidden("cordon a node", a.c.Patch(ctx, node.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`))))
		forbidden("label its own namespace", a.c.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.ns}},
			client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"team":"admin"}}}`))))
		forbidden("read the manager's Secrets", a.c.List(ctx, &corev1.SecretList{}, client.InNamespace(managerNamespace)))
		forbidden("grant its apps' ServiceAccount the admin role", a.c.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "escalate"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: a.ns, Name: appServiceAccount}},
		}))

		By("nothing of tenant-b's or the cluster's changed")
		now := getApp(b.ns, "b-app")
		Expect(now.Generation).To(Equal(int64(1)))
		Expect(now.Spec.Mode).To(Equal(v1alpha1.ModeActive))
		Expect(getNodeObj(node.Name).Spec.Unschedulable).To(BeFalse())
		var chps v1alpha1.ClusterHealingPolicyList
		Expect(k8s.List(ctx, &chps)).To(Succeed())
		Expect(chps.Items).NotTo(ContainElement(HaveField("Name", "tenant-a-everywhere")))
	})

	Context("object sensors", func() {
		It("refuses an object sensor on a Secret at admission, in any spelling of the kind", func() {
			for _, ref := range []v1alpha1.ObjectReference{
				{APIVersion: "v1", Kind: "Secret"}, {APIVersion: "v1", Kind: "secret"}, {APIVersion: "/v1", Kind: "SECRET"},
			} {
				app := tenancyApp(a.ns, "read-secret", sensing(objectSensor("password", ref.APIVersion, ref.Kind, "db-credentials", "size(object.data)")))
				err := a.c.Create(ctx, app)
				Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s %s: %v", ref.APIVersion, ref.Kind, err)
				Expect(err.Error()).To(ContainSubstring("spec.sensors[0].object.ref.kind"))
				Expect(err.Error()).To(ContainSubstring(v1alpha1.ObjectSensorSecretMessage))
			}
			Expect(apierrors.IsNotFound(k8s.Get(ctx, types.NamespacedName{Namespace: a.ns, Name: "read-secret"}, &v1alpha1.AutonomicApp{}))).To(BeTrue())
			expectNowhere(a.ns, secretValue, tm)
		})

		It("refuses double() of a Secret's field, or any expression over a Secret, at admission: the value never reaches an error message", func() {
			for _, expr := range []string{
				"double(object.data.password)",
				// A yes/no oracle on the password, a guess at a time.
				"object.data.password == 'aHVudGVyMg==' ? 1.0 : 0.0",
			} {
				app := tenancyApp(a.ns, "leak-secret", sensing(objectSensor("password", "v1", "Secret", "db-credentials", expr)))
				err := a.c.Create(ctx, app)
				Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s: %v", expr, err)
				Expect(err.Error()).To(ContainSubstring(v1alpha1.ObjectSensorSecretMessage))
			}
			expectNowhere(a.ns, secretValue, tm)
		})

		It("says only the type when an object sensor reads a ConfigMap value that is not a number, never the value", func() {
			cmValue := fmt.Sprintf("not-a-number-%d", time.Now().UnixNano())
			a.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"},
				Data: map[string]string{"token": cmValue, "depth": "7"}})
			a.createApp(tenancyApp(a.ns, "settings", sensing(
				objectSensor("as_is", "v1", "ConfigMap", "settings", "object.data.token"),
				objectSensor("converted", "v1", "ConfigMap", "settings", "double(object.data.token)"),
				objectSensor("depth", "v1", "ConfigMap", "settings", "double(object.data.depth)"),
			)))
			sensorStatuses(a.ns, "settings", map[string]OmegaMatcher{
				"as_is": failsWith(Equal(`ConfigMap "settings": the expression returned a string, not a number (convert it with double() or int())`)),
				"converted": failsWith(Equal(`ConfigMap "settings": evaluating the expression failed: ` +
					`a value of the object could not be converted to the type the expression asks for`)),
				// The app's ServiceAccount may get its namespace's ConfigMaps: a number is read.
				"depth": HaveField("Value", "7"),
			})
			expectNowhere(a.ns, cmValue, tm)
		})

		It("refuses an object sensor on a Node: by the app's rights, and with rights by --object-sensor-cluster-kinds", func() {
			node := nodeNames()[0]
			By("a ServiceAccount of tenant-a that the cluster admin lets read nodes")
			Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "node-reader"}})).To(Succeed())
			reader := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{GenerateName: "tenancy-node-reader-"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}}}}
			Expect(k8s.Create(ctx, reader)).To(Succeed())
			DeferCleanup(func() { Expect(k8s.Delete(ctx, reader)).To(Succeed()) })
			binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{GenerateName: "tenancy-node-reader-"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: a.ns, Name: "node-reader"}}}
			Expect(k8s.Create(ctx, binding)).To(Succeed())
			DeferCleanup(func() { Expect(k8s.Delete(ctx, binding)).To(Succeed()) })

			sensor := objectSensor("allocatable", "v1", "Node", node, "double(object.status.allocatable.pods)")
			a.createApp(tenancyApp(a.ns, "node-rights", sensing(sensor)))
			withRights := tenancyApp(a.ns, "node-kinds", sensing(sensor))
			withRights.Spec.ServiceAccountName = "node-reader"
			a.createApp(withRights)
			sensorStatuses(a.ns, "node-rights", map[string]OmegaMatcher{"allocatable": failsWith(And(
				HavePrefix(`reading Node %q is refused by the tenant's rights: ServiceAccount %s/%s may not get nodes cluster-wide (%q)`, node, a.ns, appServiceAccount, node),
				HaveSuffix(`grant it in a ClusterRole bound to the ServiceAccount by a ClusterRoleBinding, with the rule {apiGroups: [""], resources: ["nodes"], verbs: ["get"]}`)))})
			sensorStatuses(a.ns, "node-kinds", map[string]OmegaMatcher{"allocatable": failsWith(Equal(
				"Node is cluster-scoped, and the cluster admin allows object sensors to read none of the cluster-scoped kinds " +
					"(the manager's --object-sensor-cluster-kinds); read an object of the app's namespace instead"))})
		})

		It("cannot point an object sensor at another namespace: the reference has no namespace, and reads the app's own", func() {
			a.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Data: map[string]string{"depth": "1"}})
			b.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Data: map[string]string{"depth": "2"}})
			typed := tenancyApp(a.ns, "cross", sensing(objectSensor("depth", "v1", "ConfigMap", "shared", "double(object.data.depth)")))
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(typed)
			Expect(err).NotTo(HaveOccurred())
			u := &unstructured.Unstructured{Object: obj}
			u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("AutonomicApp"))
			sensors, _, _ := unstructured.NestedSlice(u.Object, "spec", "sensors")
			sensors[0].(map[string]any)["object"].(map[string]any)["ref"].(map[string]any)["namespace"] = b.ns
			Expect(unstructured.SetNestedSlice(u.Object, sensors, "spec", "sensors")).To(Succeed())

			By("with strict field validation (kubectl's default) the API server refuses the field")
			err = a.c.Create(ctx, u.DeepCopy(), client.FieldValidation("Strict"))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(`unknown field "spec.sensors[0].object.ref.namespace"`))

			By("without it the field is dropped, the API server says so, and the sensor reads tenant-a's ConfigMap of that name")
			Expect(a.c.Create(ctx, u)).To(Succeed())
			Expect(a.warned.all()).To(ContainElement(ContainSubstring(`unknown field "spec.sensors[0].object.ref.namespace"`)))
			DeferCleanup(func() { Expect(client.IgnoreNotFound(a.c.Delete(ctx, typed))).To(Succeed()) })
			stored := &unstructured.Unstructured{}
			stored.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("AutonomicApp"))
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(typed), stored)).To(Succeed())
			ref, _, _ := unstructured.NestedSlice(stored.Object, "spec", "sensors")
			Expect(ref[0].(map[string]any)["object"].(map[string]any)["ref"]).NotTo(HaveKey("namespace"))
			sensorStatuses(a.ns, "cross", map[string]OmegaMatcher{"depth": HaveField("Value", "1")})
			Consistently(func() string { return getApp(a.ns, "cross").Status.Sensors[0].Value }).
				WithTimeout(3 * time.Second).WithPolling(500 * time.Millisecond).Should(Equal("1"))
		})
	})

	Context("webhooks", func() {
		It("refuses a webhook with headers from a Secret the app's ServiceAccount may not get, and sends nothing", func() {
			receiver := serve(attackHost, nil)
			a.createApp(tenancyApp(a.ns, "exfiltrate", actingOnce(v1alpha1.Action{Webhook: &v1alpha1.WebhookAction{
				URL: receiver.URL + "/hook", AllowInsecure: true, HeadersFrom: &v1alpha1.SecretReference{Name: "db-credentials"}}})))
			r := expectForbiddenRecord(a.ns, "exfiltrate",
				fmt.Sprintf(`ServiceAccount %s/%s may not get secrets in namespace %s ("db-credentials")`, a.ns, appServiceAccount, a.ns),
				fmt.Sprintf(`grant it in a Role of namespace %s bound to the ServiceAccount, with the rule {apiGroups: [""], resources: ["secrets"], verbs: ["get"]}`, a.ns))
			Expect(r.Action).To(Equal("webhook"))
			Consistently(receiver.hits.Load).WithTimeout(3 * time.Second).Should(BeZero())
			expectNowhere(a.ns, secretValue, tm)
		})

		It("keeps a cluster policy's webhook headers the admin's: a Secret the tenant plants under their name is never read", func() {
			var mu sync.Mutex
			var tokens []string
			receiver := serve(attackHost, func(_ http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				tokens = append(tokens, r.Header.Get("X-Pager-Token"))
			})
			By("the cluster admin's ClusterHealingPolicy pages with the token of a Secret in the manager's namespace")
			adminSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: managerNamespace, GenerateName: "tenancy-pager-"},
				StringData: map[string]string{"X-Pager-Token": "admin-token"}}
			Expect(k8s.Create(ctx, adminSecret)).To(Succeed())
			DeferCleanup(func() { Expect(k8s.Delete(ctx, adminSecret)).To(Succeed()) })
			patchNamespaceLabel(a.ns, "e2e.homeostat.dev/pager", "on")
			chp := &v1alpha1.ClusterHealingPolicy{ObjectMeta: metav1.ObjectMeta{GenerateName: "tenancy-pager-"},
				Spec: v1alpha1.ClusterHealingPolicySpec{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"e2e.homeostat.dev/pager": "on"}},
					HealingPolicySpec: v1alpha1.HealingPolicySpec{
						AppSelector: metav1.LabelSelector{MatchLabels: map[string]string{"pager": "on"}},
						Healing: v1alpha1.Healing{
							Symptoms: []v1alpha1.Symptom{{Name: "PagerTest", Expression: "components.exists(c, components[c].desiredReplicas >= 0)"}},
							Policies: []v1alpha1.Policy{{Name: "page", Remediate: &v1alpha1.RemediatePolicy{When: []string{"PagerTest"},
								Steps: []v1alpha1.RemediationStep{step(v1alpha1.Action{Webhook: &v1alpha1.WebhookAction{
									URL: receiver.URL + "/page", AllowInsecure: true,
									HeadersFrom: &v1alpha1.SecretReference{Name: adminSecret.Name}}}, time.Hour)}}}},
						}}}}
			Expect(k8s.Create(ctx, chp)).To(Succeed())
			DeferCleanup(func() { Expect(k8s.Delete(ctx, chp)).To(Succeed()) })

			By("tenant-a plants a Secret of the same name with its own token, and opts its app in")
			a.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: adminSecret.Name},
				StringData: map[string]string{"X-Pager-Token": "tenant-token"}})
			app := tenancyApp(a.ns, "paged", v1alpha1.Healing{})
			app.Labels = map[string]string{"pager": "on"}
			a.createApp(app)

			r := firstRecord(a.ns, "paged")
			Expect(r.Result).To(Equal(v1alpha1.ResultSucceeded), r.Message)
			Expect(receiver.hits.Load()).To(BeNumerically(">=", 1))
			mu.Lock()
			defer mu.Unlock()
			Expect(tokens).To(HaveEach("admin-token"), "the admin's Secret, never the tenant's")
		})
	})

	Context("node actions", func() {
		// nodeActionHeld waits until the app's node step is held by the admin's
		// --node-actions-namespaces, and checks that nothing was recorded.
		nodeActionHeld := func(ns, app, policy string) {
			GinkgoHelper()
			Eventually(func(g Gomega) {
				st := policyStatus(getApp(ns, app), policy)
				g.Expect(st.State).To(Equal(v1alpha1.PolicyHeld), st.Message)
				g.Expect(st.Reason).To(Equal("NodeActionsNotAllowed"))
				g.Expect(st.Message).To(ContainSubstring("cordonNode and drainNode run only from ClusterHealingPolicies or from the namespaces "+
					"the cluster admin lists in --node-actions-namespaces, and namespace %s is not listed, so no node is cordoned or drained "+
					"for this policy. Nodes are shared: ask the cluster admin to list the namespace, or to run the action from a ClusterHealingPolicy.", ns))
			}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
			Expect(records(getApp(ns, app), "")).To(BeEmpty(), "nothing is recorded")
		}

		It("refuses cordonNode from a tenant's app: its namespace is not one the admin lists for node actions, and every node stays schedulable", func() {
			a.create(deployment(a.ns, "crash-cordon", "registry.local/shop/web:bad", 1))
			a.createApp(healApp(a.ns, "cordon", "crash-cordon", v1alpha1.ModeActive,
				step(v1alpha1.Action{CordonNode: &v1alpha1.NodeAction{Component: "web", MaxNodes: 1}}, time.Hour)))
			nodeActionHeld(a.ns, "cordon", "heal-web")
			expectNodesUntouched()
		})

		It("refuses drainNode from a tenant's app, and the other tenant's pods are untouched", func() {
			before := podUIDs(b.ns)
			Expect(before).To(HaveLen(2))
			a.create(deployment(a.ns, "crash-drain", "registry.local/shop/web:bad", 1))
			a.createApp(healApp(a.ns, "drain", "crash-drain", v1alpha1.ModeActive, step(drainNode("web", nil), time.Hour)))
			nodeActionHeld(a.ns, "drain", "heal-web")
			Consistently(func() map[string]types.UID { return podUIDs(b.ns) }).
				WithTimeout(3*time.Second).WithPolling(500*time.Millisecond).Should(Equal(before), "tenant-b's pods are neither evicted nor replaced")
			expectNodesUntouched()
		})

		It("refuses drainNode from the namespace the admin lists while its ServiceAccount may not patch nodes, and the other tenant's pods on the node are untouched", func() {
			before := podUIDs(b.ns)
			Expect(before).To(HaveLen(2))
			platform.create(deployment(platform.ns, "crash-drain", "registry.local/shop/web:bad", 1))
			platform.createApp(healApp(platform.ns, "drain", "crash-drain", v1alpha1.ModeActive, step(drainNode("web", nil), time.Hour)))
			r := expectForbiddenRecord(platform.ns, "drain", fmt.Sprintf("ServiceAccount %s/%s may not patch nodes cluster-wide", platform.ns, appServiceAccount),
				"list pods cluster-wide", "create pods/eviction cluster-wide",
				"grant them in a ClusterRole bound to the ServiceAccount by a ClusterRoleBinding")
			Expect(r.Objects).To(HaveLen(1))
			var onNode []string
			for _, p := range pods(b.ns, "web") {
				if p.Spec.NodeName == r.Objects[0] {
					onNode = append(onNode, p.Name)
				}
			}
			Expect(onNode).NotTo(BeEmpty(), "tenant-b has a pod on the node the platform's app would drain")
			Consistently(func() map[string]types.UID { return podUIDs(b.ns) }).
				WithTimeout(3*time.Second).WithPolling(500*time.Millisecond).Should(Equal(before), "tenant-b's pods are neither evicted nor replaced")
			expectNodesUntouched()
		})
	})

	Context("egress", func() {
		It("refuses http sensors aimed at the manager's own metrics, probe and pprof ports, although 127.0.0.2 is allowed", func() {
			metrics := tm.metricsAddr
			a.createApp(tenancyApp(a.ns, "own-ports", sensing(
				httpSensor("metrics", "http://"+metrics+"/metrics"),
				httpSensor("probe", "http://"+probeAddr+"/healthz"),
				httpSensor("pprof", "http://"+pprofAddr+"/debug/pprof/heap"),
			)))
			sensorStatuses(a.ns, "own-ports", map[string]OmegaMatcher{
				"metrics": failsWith(Equal("GET http://" + metrics + "/metrics: the egress policy refused " + metrics +
					": it is the manager's own metrics listener (--metrics-bind-address); no flag allows it")),
				"probe": failsWith(Equal("GET http://" + probeAddr + "/healthz: the egress policy refused " + probeAddr +
					": it is the manager's own health probe listener (--health-probe-bind-address); no flag allows it")),
				"pprof": failsWith(Equal("GET http://" + pprofAddr + "/debug/pprof/heap: the egress policy refused " + pprofAddr +
					": it is the manager's own pprof listener (--pprof-bind-address); no flag allows it")),
			})
		})

		It("refuses http sensors aimed at the API server, by address and by a name that resolves to it", func() {
			api, err := url.Parse(restConfig.Host)
			Expect(err).NotTo(HaveOccurred())
			byName := "https://localhost:" + api.Port() + "/version"
			a.createApp(tenancyApp(a.ns, "apiserver", sensing(
				httpSensor("by_address", "https://"+api.Host+"/version"),
				httpSensor("by_name", byName),
			)))
			sensorStatuses(a.ns, "apiserver", map[string]OmegaMatcher{
				"by_address": failsWith(Equal("GET https://" + api.Host + "/version: the egress policy refused " + api.Host +
					": it is the Kubernetes API server; no flag allows it")),
				"by_name": failsWith(And(HavePrefix("GET "+byName+": the egress policy refused "),
					HaveSuffix(":"+api.Port()+": it is the Kubernetes API server; no flag allows it"))),
			})
		})

		It("does not follow a redirect: an http sensor's answer is the 3xx, a prometheus sensor's is an error, and the target sees no request", func() {
			target := serve(attackHost, nil)
			redirect := serve(attackHost, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/stolen", http.StatusFound)
			})
			probe := httpSensor("probe", redirect.URL+"/healthz")
			probe.HTTP.ExpectedStatus = []int32{200}
			a.createApp(tenancyApp(a.ns, "redirected", sensing(probe, promSensor("prom", redirect.URL))))
			sensorStatuses(a.ns, "redirected", map[string]OmegaMatcher{
				"probe": failsWith(Equal("GET " + redirect.URL + "/healthz answered 302 Found (text/html); expected 200")),
				"prom":  failsWith(And(HavePrefix("querying prometheus at " + redirect.URL + ": it answered 302 Found, a redirect, which the egress policy never follows"))),
			})
			Expect(redirect.hits.Load()).To(BeNumerically(">", 0))
			Consistently(target.hits.Load).WithTimeout(3 * time.Second).Should(BeZero())
		})

		It("refuses an http sensor to a host name that resolves to loopback, at dial time, and the server there sees no request", func() {
			// The server listens on 127.0.0.1, which the tenancy manager may not reach.
			local := serve("127.0.0.1", nil)
			u, err := url.Parse(local.URL)
			Expect(err).NotTo(HaveOccurred())
			a.createApp(tenancyApp(a.ns, "rebind", sensing(httpSensor("local", "http://localhost:"+u.Port()+"/"))))
			sensorStatuses(a.ns, "rebind", map[string]OmegaMatcher{"local": failsWith(MatchRegexp(
				`^GET http://localhost:%s/: the egress policy refused (\[::ffff:)?127\.0\.0\.1\]?:%s: it is a loopback address \(127\.0\.0\.0/8\), denied by default; --egress-allow-cidrs=127\.0\.0\.0/8 would allow it$`,
				u.Port(), u.Port()))})
			Consistently(local.hits.Load).WithTimeout(3 * time.Second).Should(BeZero())
		})

		It("fails a sensor whose endpoint answers a huge or endless body as too large at --egress-max-response-bytes", func() {
			var h hangups
			huge := serve(attackHost, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(1<<20))
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(make([]byte, 1<<20))
			})
			endless := serve(attackHost, h.endless)
			a.createApp(tenancyApp(a.ns, "huge", sensing(
				httpSensor("declared", huge.URL+"/"),
				httpSensor("endless", endless.URL+"/"),
				promSensor("prom", endless.URL),
			)))
			tooLarge := "the response body is larger than 64 KiB, the most the egress policy reads (--egress-max-response-bytes)"
			sensorStatuses(a.ns, "huge", map[string]OmegaMatcher{
				"declared": failsWith(Equal("GET " + huge.URL + "/: " + tooLarge)),
				"endless":  failsWith(Equal("GET " + endless.URL + "/: " + tooLarge)),
				"prom":     failsWith(Equal("querying prometheus at " + endless.URL + ": " + tooLarge)),
			})
			longest, n := h.longest()
			logf("endless body: %d requests, the longest ended by the manager after %s, at most %d bytes written into one", n, longest, h.bytes.Load())
			Expect(n).To(BeNumerically(">", 0))
			Expect(longest).To(BeNumerically("<", 3*time.Second), "the manager hangs up on an endless body")
		})

		It("cuts a sensor whose endpoint never answers, or trickles forever, at --egress-max-timeout, and says so", func() {
			var silent, trickling hangups
			quiet := serve(attackHost, silent.silent)
			slow := serve(attackHost, trickling.trickle)
			asks := func(s v1alpha1.Sensor) v1alpha1.Sensor {
				s.Timeout = dur(time.Minute)
				s.HTTP.Timeout = dur(time.Minute)
				return s
			}
			a.createApp(tenancyApp(a.ns, "slow", sensing(asks(httpSensor("silent", quiet.URL+"/")), asks(httpSensor("trickle", slow.URL+"/")))))
			capped := " (the timeout asked for, 1m0s, is capped at 2s by --egress-max-timeout)"
			sensorStatuses(a.ns, "slow", map[string]OmegaMatcher{
				"silent":  failsWith(Equal("GET " + quiet.URL + "/: no answer within 2s" + capped)),
				"trickle": failsWith(Equal("GET " + slow.URL + "/: no answer within 2s" + capped)),
			})
			c := condition(getApp(a.ns, "slow"), v1alpha1.ConditionSensorsAvailable)
			Expect(c.Message).To(ContainSubstring("The admin's --egress-max-timeout caps sensor timeouts: silent asks for 1m0s and gets 2s"))
			for name, h := range map[string]*hangups{"silent": &silent, "trickle": &trickling} {
				longest, n := h.longest()
				logf("%s: %d requests, the longest ended by the manager after %s", name, n, longest)
				Expect(n).To(BeNumerically(">", 0), name)
				Expect(longest).To(BeNumerically("<", 4*time.Second), "%s: the manager hangs up at --egress-max-timeout", name)
			}
		})

		It("refuses prometheus sensors aimed at the manager's own ports or the API server", func() {
			api, err := url.Parse(restConfig.Host)
			Expect(err).NotTo(HaveOccurred())
			a.createApp(tenancyApp(a.ns, "prom-own", sensing(
				promSensor("metrics", "http://"+tm.metricsAddr),
				promSensor("probe", "http://"+probeAddr),
				promSensor("apiserver", restConfig.Host),
			)))
			refused := func(address, hostPort, rule string) OmegaMatcher {
				return failsWith(Equal("querying prometheus at " + address + ": the egress policy refused " + hostPort + ": " + rule))
			}
			sensorStatuses(a.ns, "prom-own", map[string]OmegaMatcher{
				"metrics":   refused("http://"+tm.metricsAddr, tm.metricsAddr, "it is the manager's own metrics listener (--metrics-bind-address); no flag allows it"),
				"probe":     refused("http://"+probeAddr, probeAddr, "it is the manager's own health probe listener (--health-probe-bind-address); no flag allows it"),
				"apiserver": refused(restConfig.Host, api.Host, "it is the Kubernetes API server; no flag allows it"),
			})
		})
	})

	Context("sharing the manager", func() {
		// slowTenantA gives tenant-a six apps of eight sensors each on an endpoint that
		// never answers: every poll holds a worker for --egress-max-timeout, and together
		// they ask for more workers than the manager has (--sensor-workers=8).
		slowTenantA := func() *hangups {
			var h hangups
			quiet := serve(attackHost, h.silent)
			for i := range 6 {
				var sensors []v1alpha1.Sensor
				for j := range 8 {
					sensors = append(sensors, httpSensor(fmt.Sprintf("slow%d", j), fmt.Sprintf("%s/%d/%d", quiet.URL, i, j)))
				}
				a.createApp(tenancyApp(a.ns, fmt.Sprintf("slow%d", i), sensing(sensors...)))
			}
			Eventually(h.active.Load).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).
				Should(BeNumerically(">=", 4), "tenant-a's polls hold its share of the workers")
			return &h
		}
		// pollGaps records when tenant-b's sensor's server is asked, for a while, and
		// returns the requests and the longest gap between two.
		pollGaps := func(watch time.Duration) (int, time.Duration) {
			var mu sync.Mutex
			var at []time.Time
			fast := serve(attackHost, func(http.ResponseWriter, *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				at = append(at, time.Now())
			})
			b.createApp(tenancyApp(b.ns, "polled", sensing(httpSensor("probe", fast.URL+"/healthz"))))
			Eventually(fast.hits.Load).WithTimeout(30 * time.Second).Should(BeNumerically(">", 0))
			start := time.Now()
			time.Sleep(watch)
			mu.Lock()
			defer mu.Unlock()
			last, longest, n := start, time.Duration(0), 0
			for _, t := range at {
				if t.Before(start) {
					continue
				}
				n++
				longest = max(longest, t.Sub(last))
				last = t
			}
			return n, max(longest, time.Since(last))
		}

		It("polls tenant-b's sensor at its interval while tenant-a's endpoints hang: tenant-a holds at most its share of the workers", func() {
			h := slowTenantA()
			n, longest := pollGaps(20 * time.Second)
			peak := h.peak(50 * time.Millisecond)
			logf("tenant-b's sensor (interval 1s) was polled %d times in 20s, at most %s apart, while tenant-a's hanging polls held at most %d workers",
				n, longest, peak)
			Expect(peak).To(BeNumerically("<=", 4), "--sensor-workers-per-namespace=4")
			Expect(n).To(BeNumerically(">=", 15))
			Expect(longest).To(BeNumerically("<", 1800*time.Millisecond), "at most a turn late")
		})

		It("sends tenant-b's webhook at once while tenant-a's receivers hang: tenant-a holds at most its share of the senders", func() {
			var h hangups
			quiet := serve(attackHost, h.silent)
			for i := range 4 {
				a.createApp(tenancyApp(a.ns, fmt.Sprintf("hook%d", i), actingOnce(v1alpha1.Action{Webhook: &v1alpha1.WebhookAction{
					URL: fmt.Sprintf("%s/%d", quiet.URL, i), AllowInsecure: true, Timeout: dur(time.Minute), Retries: 5}})))
			}
			Eventually(h.active.Load).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).
				Should(BeNumerically(">=", 2), "tenant-a's POSTs hold its share of the senders")
			receiver := serve(attackHost, nil)
			start := time.Now()
			b.createApp(tenancyApp(b.ns, "hook", actingOnce(v1alpha1.Action{Webhook: &v1alpha1.WebhookAction{
				URL: receiver.URL + "/hook", AllowInsecure: true}})))
			r := firstRecord(b.ns, "hook")
			peak := h.peak(50 * time.Millisecond)
			logf("tenant-b's webhook was answered %s after its app was created, while tenant-a's hanging POSTs held at most %d senders",
				time.Since(start), peak)
			Expect(r.Result).To(Equal(v1alpha1.ResultSucceeded), r.Message)
			Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second))
			Expect(peak).To(BeNumerically("<=", 2), "--webhook-action-workers-per-namespace=2")
			for i := range 4 {
				rs := records(getApp(a.ns, fmt.Sprintf("hook%d", i)), "webhook")
				Expect(rs).To(HaveLen(1))
				Expect(rs[0].Result).To(Equal(v1alpha1.ResultPending), "tenant-a's POSTs still wait on their receivers")
			}
		})

		It("is not engaged by six ghost apps in tenant-a, and does not hold tenant-b's remediation", func() {
			for i := range 6 {
				a.createApp(healApp(a.ns, fmt.Sprintf("ghost%d", i), fmt.Sprintf("missing%d", i), v1alpha1.ModeActive,
					step(restartPods("web"), 10*time.Second)))
			}
			Eventually(func(g Gomega) {
				for i := range 6 {
					c := condition(getApp(a.ns, fmt.Sprintf("ghost%d", i)), v1alpha1.ConditionReady)
					g.Expect(c).NotTo(BeNil())
					g.Expect(c.Reason).To(Equal(v1alpha1.ReasonComponentNotFound))
				}
			}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())

			By("tenant-b's app breaks, and its remediation acts within its ServiceAccount's rights")
			b.create(deployment(b.ns, "shop", "registry.local/shop/web:good", 2))
			waitRunning(b.ns, "shop", ":good", 2)
			b.createApp(healApp(b.ns, "shop", "shop", v1alpha1.ModeActive, step(restartPods("web"), 10*time.Second)))
			waitReady(b.ns, "shop")
			setImageAs(b, "shop", "registry.local/shop/web:bad")
			r := firstRecord(b.ns, "shop")
			Expect(r.Action).To(Equal("restartPods"))
			Expect(r.Result).To(Equal(v1alpha1.ResultSucceeded), r.Message)
			for _, ns := range []string{a.ns, b.ns} {
				var apps v1alpha1.AutonomicAppList
				Expect(k8s.List(ctx, &apps, client.InNamespace(ns))).To(Succeed())
				for _, app := range apps.Items {
					c := condition(&app, v1alpha1.ConditionSuspended)
					Expect(c == nil || c.Reason != v1alpha1.ReasonStormDetected).To(BeTrue(), "%s/%s: %v", ns, app.Name, c)
				}
			}
			Expect(tm.metrics()).To(ContainSubstring("homeostat_storm_active 0"))
		})

		It("engages on a storm in two namespaces however many healthy apps tenant-a adds: its apps do not dilute it", func() {
			By("ten healthy apps in tenant-a")
			for i := range 10 {
				a.createApp(tenancyApp(a.ns, fmt.Sprintf("calm%d", i), v1alpha1.Healing{}))
			}
			for i := range 10 {
				waitReady(a.ns, fmt.Sprintf("calm%d", i))
			}
			By("two apps each break in two other namespaces: 4 of 14 apps, but 2 of 3 namespaces")
			var broken []*tenant
			for _, prefix := range []string{"storm-x", "storm-y"} {
				t := newTenant(prefix)
				t.create(deployment(t.ns, "web", "registry.local/shop/web:bad", 1))
				broken = append(broken, t)
			}
			for _, t := range broken {
				for i := range 2 {
					app := healApp(t.ns, fmt.Sprintf("app%d", i), "web", v1alpha1.ModeActive, step(restartPods("web"), 10*time.Second))
					app.Spec.Symptoms[0].For = dur(3 * time.Second)
					t.createApp(app)
				}
			}
			Eventually(func(g Gomega) {
				for _, t := range broken {
					for i := range 2 {
						app := getApp(t.ns, fmt.Sprintf("app%d", i))
						c := condition(app, v1alpha1.ConditionSuspended)
						g.Expect(c).NotTo(BeNil())
						g.Expect(c.Reason).To(Equal(v1alpha1.ReasonStormDetected), c.Message)
						g.Expect(c.Message).To(HavePrefix("2 of 3 namespaces have more than --storm-threshold of their apps unhealthy"))
						p := policyStatus(app, "heal-web")
						g.Expect(p.State).To(Equal(v1alpha1.PolicyHeld))
						g.Expect(p.Reason).To(Equal(v1alpha1.ReasonStormDetected))
					}
				}
			}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
			Consistently(func(g Gomega) {
				for _, t := range broken {
					for i := range 2 {
						g.Expect(getApp(t.ns, fmt.Sprintf("app%d", i)).Status.History).To(BeEmpty())
					}
				}
			}).WithTimeout(5 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
			Expect(tm.metrics()).To(ContainSubstring("homeostat_storm_active 1"))
		})
	})

	Context("actions", func() {
		It("refuses a runJob whose Job would run as a more privileged ServiceAccount, and creates no Job; one that names none runs as the app's", func() {
			By("a ServiceAccount of tenant-a with the admin role there, which tenant-a's apps do not act as")
			Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "deployer"}})).To(Succeed())
			Expect(k8s.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "deployer-admin"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: a.ns, Name: "deployer"}}})).To(Succeed())

			a.createApp(tenancyApp(a.ns, "escalate", actingOnce(v1alpha1.Action{RunJob: &v1alpha1.RunJobAction{Template: jobTemplateAs("deployer")}})))
			expectForbiddenRecord(a.ns, "escalate", fmt.Sprintf("The runJob's Job would run as ServiceAccount %s/deployer "+
				"(runJob.template.spec.template.spec.serviceAccountName), but the app acts as ServiceAccount %s/%s, and a Job runs "+
				"with the rights of its ServiceAccount: remove the field, and the Job runs as %s, or set it to %s",
				a.ns, a.ns, appServiceAccount, appServiceAccount, appServiceAccount))

			a.createApp(tenancyApp(a.ns, "own-job", actingOnce(v1alpha1.Action{RunJob: &v1alpha1.RunJobAction{Template: jobTemplateAs("")}})))
			Eventually(func(g Gomega) {
				var jobs batchv1.JobList
				g.Expect(k8s.List(ctx, &jobs, client.InNamespace(a.ns))).To(Succeed())
				g.Expect(jobs.Items).To(HaveLen(1), "the own-job app's Job, and none of the escalate app's")
				g.Expect(jobs.Items[0].OwnerReferences).To(ContainElement(HaveField("Name", "own-job")))
				g.Expect(jobs.Items[0].Spec.Template.Spec.ServiceAccountName).To(Equal(appServiceAccount))
			}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
		})

		It("refuses a scale the app's ServiceAccount may not make, naming the missing permission, and the Deployment is unchanged", func() {
			before := &appsv1.Deployment{}
			Expect(k8s.Get(ctx, types.NamespacedName{Namespace: a.ns, Name: "web"}, before)).To(Succeed())
			a.createApp(tenancyApp(a.ns, "scaler", actingOnce(v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "web", Replicas: ptr.To(int32(5))}})))
			expectForbiddenRecord(a.ns, "scaler",
				fmt.Sprintf(`ServiceAccount %s/%s may not patch deployments.apps/scale in namespace %s ("web")`, a.ns, appServiceAccount, a.ns),
				fmt.Sprintf(`grant it in a Role of namespace %s bound to the ServiceAccount, with the rule {apiGroups: ["apps"], resources: ["deployments/scale"], verbs: ["patch"]}`, a.ns))
			Consistently(func(g Gomega) {
				d := &appsv1.Deployment{}
				g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: a.ns, Name: "web"}, d)).To(Succeed())
				g.Expect(d.Generation).To(Equal(before.Generation))
				g.Expect(*d.Spec.Replicas).To(Equal(int32(1)))
			}).WithTimeout(3 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		})

		It("holds an app that names a ServiceAccount its namespace lacks (another tenant's, or none) with ServiceAccountNotFound, and refuses another namespace's by its full name at admission", func() {
			Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: "b-healer"}})).To(Succeed())
			for name, sa := range map[string]string{"borrowed": "b-healer", "nobody": "nobody"} {
				app := tenancyApp(a.ns, name, actingOnce(v1alpha1.Action{Scale: &v1alpha1.ScaleAction{Component: "web", Replicas: ptr.To(int32(3))}}))
				app.Spec.ServiceAccountName = sa
				a.createApp(app)
			}
			for name, sa := range map[string]string{"borrowed": "b-healer", "nobody": "nobody"} {
				Eventually(func(g Gomega) {
					c := condition(getApp(a.ns, name), v1alpha1.ConditionReady)
					g.Expect(c).NotTo(BeNil())
					g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
					g.Expect(c.Reason).To(Equal(v1alpha1.ReasonServiceAccountNotFound))
					g.Expect(c.Message).To(HavePrefix("ServiceAccount %s/%s does not exist, and the app acts with its rights: create it (kubectl create serviceaccount %s -n %s)",
						a.ns, sa, sa, a.ns))
				}).WithTimeout(30*time.Second).WithPolling(250*time.Millisecond).Should(Succeed(), name)
			}
			Consistently(func(g Gomega) {
				for _, name := range []string{"borrowed", "nobody"} {
					g.Expect(getApp(a.ns, name).Status.History).To(BeEmpty(), name)
				}
			}).WithTimeout(3 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

			full := tenancyApp(a.ns, "full-name", sensing())
			full.Spec.ServiceAccountName = "system:serviceaccount:" + b.ns + ":b-healer"
			err := a.c.Create(ctx, full)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
			Expect(err.Error()).To(ContainSubstring("spec.serviceAccountName"))
		})

		It("keeps an enforced ClusterHealingPolicy entry and guard though the app declares its own of the same name, and says what it replaced", func() {
			By("the cluster admin enforces a guardrail on the apps of tenant-a's namespace")
			patchNamespaceLabel(a.ns, "e2e.homeostat.dev/guardrails", "on")
			chp := &v1alpha1.ClusterHealingPolicy{ObjectMeta: metav1.ObjectMeta{GenerateName: "tenancy-guardrails-"},
				Spec: v1alpha1.ClusterHealingPolicySpec{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"e2e.homeostat.dev/guardrails": "on"}},
					Enforced: &v1alpha1.Enforcement{Policies: []string{"guardrail"},
						Guards: []v1alpha1.EnforcedGuard{v1alpha1.GuardCooldown}},
					HealingPolicySpec: v1alpha1.HealingPolicySpec{Healing: v1alpha1.Healing{
						Symptoms: []v1alpha1.Symptom{{Name: "Always", Expression: "components.exists(c, components[c].desiredReplicas >= 0)"}},
						Policies: []v1alpha1.Policy{{Name: "guardrail", Remediate: &v1alpha1.RemediatePolicy{When: []string{"Always"},
							Steps: []v1alpha1.RemediationStep{step(notify("the admin's guardrail"), time.Hour)}}}},
						Guards: &v1alpha1.Guards{Cooldown: dur(time.Minute)},
					}}}}
			Expect(k8s.Create(ctx, chp)).To(Succeed())
			DeferCleanup(func() { Expect(k8s.Delete(ctx, chp)).To(Succeed()) })

			By("tenant-a's app declares a policy of the same name that restarts web, and a cooldown of a second")
			before := &appsv1.Deployment{}
			Expect(k8s.Get(ctx, types.NamespacedName{Namespace: a.ns, Name: "web"}, before)).To(Succeed())
			own := actingOnce(rolloutRestart("web"))
			own.Policies[0].Name = "guardrail"
			own.Guards = &v1alpha1.Guards{Cooldown: dur(time.Second)}
			a.createApp(tenancyApp(a.ns, "override", own))

			enforced := "ClusterHealingPolicy " + chp.Name + " (enforced)"
			Eventually(func(g Gomega) {
				app := getApp(a.ns, "override")
				g.Expect(policyStatus(app, "guardrail").Source).To(Equal(enforced))
				c := condition(app, v1alpha1.ConditionOverridden)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Reason).To(Equal(v1alpha1.ReasonEnforcedByClusterPolicy))
				g.Expect(c.Message).To(ContainSubstring("policy guardrail from the app is replaced by the enforced ClusterHealingPolicy " + chp.Name))
				g.Expect(c.Message).To(ContainSubstring("guards.cooldown 1s from the app is tightened to 1m0s by the enforced ClusterHealingPolicy " + chp.Name))
			}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
			r := firstRecord(a.ns, "override")
			Expect(r.Action).To(Equal("notify"), "the admin's step runs, not the app's restart")
			Expect(r.Result).To(Equal(v1alpha1.ResultSucceeded), r.Message)
			Consistently(func(g Gomega) {
				d := &appsv1.Deployment{}
				g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: a.ns, Name: "web"}, d)).To(Succeed())
				g.Expect(d.Generation).To(Equal(before.Generation), "the app's own restart never runs")
				g.Expect(records(getApp(a.ns, "override"), "rolloutRestart")).To(BeEmpty())
			}).WithTimeout(3 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		})
	})
})

// nodeNames are the names of the cluster's nodes, sorted.
func nodeNames() []string {
	var list corev1.NodeList
	Expect(k8s.List(context.Background(), &list)).To(Succeed())
	var out []string
	for _, n := range list.Items {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out
}

// expectNodesUntouched checks that no node is cordoned or stamped by Homeostat.
func expectNodesUntouched() {
	GinkgoHelper()
	Consistently(func(g Gomega) {
		var list corev1.NodeList
		g.Expect(k8s.List(context.Background(), &list)).To(Succeed())
		for _, n := range list.Items {
			g.Expect(n.Spec.Unschedulable).To(BeFalse(), "node %s is cordoned", n.Name)
			g.Expect(n.Annotations).NotTo(HaveKey(v1alpha1.ActionIDAnnotation), "node %s", n.Name)
		}
	}).WithTimeout(3 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
}

// podUIDs are the UIDs of the web pods of ns that are not terminating, by name.
func podUIDs(ns string) map[string]types.UID {
	out := map[string]types.UID{}
	for _, p := range pods(ns, "web") {
		if p.DeletionTimestamp == nil {
			out[p.Name] = p.UID
		}
	}
	return out
}

// setImageAs changes a Deployment's image as the tenant.
func setImageAs(t *tenant, name, image string) {
	Eventually(func() error {
		d := &appsv1.Deployment{}
		if err := t.c.Get(context.Background(), types.NamespacedName{Namespace: t.ns, Name: name}, d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		return t.c.Update(context.Background(), d)
	}).Should(Succeed())
}

// patchNamespaceLabel sets a label on a namespace, as the cluster admin, until the spec ends.
func patchNamespaceLabel(ns, key, value string) {
	patch := func(v any) {
		b, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{key: v}}})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Patch(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
			client.RawPatch(types.MergePatchType, b))).To(Succeed())
	}
	patch(value)
	DeferCleanup(func() { patch(nil) })
}

// jobTemplateAs is a runJob template whose pods run as sa ("" names none).
func jobTemplateAs(sa string) apiextensionsv1.JSON {
	raw, err := json.Marshal(batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		ServiceAccountName: sa, RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{{Name: "fix", Image: "registry.local/tools/fix:good"}}}}}})
	Expect(err).NotTo(HaveOccurred())
	return apiextensionsv1.JSON{Raw: raw}
}
