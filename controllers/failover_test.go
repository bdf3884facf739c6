package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/plan"
)

// There is no controller-manager in envtest: Deployments get no pods. These specs cover
// what a failover policy says before any pod matters.
var _ = Describe("a failover policy", func() {
	foDeployment := func(ns, name string, sel *metav1.LabelSelector) {
		Expect(k8sClient.Create(testCtx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](0),
				Selector: sel,
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:v1"}}},
				},
			},
		})).To(Succeed())
	}
	foApp := func(ns string) *v1alpha1.AutonomicApp {
		workload := func(name string) v1alpha1.Component {
			return v1alpha1.Component{Name: name, WorkloadRef: &v1alpha1.WorkloadReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name}}
		}
		return &v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
			Spec: v1alpha1.AutonomicAppSpec{
				Components: []v1alpha1.Component{workload("web"), workload("web-standby")},
				Healing: v1alpha1.Healing{Policies: []v1alpha1.Policy{{Name: "web-failover", Failover: &v1alpha1.FailoverPolicy{
					Service:    "web",
					Candidates: []v1alpha1.FailoverCandidate{{Component: "web", Weight: 100}, {Component: "web-standby", Weight: 50}},
				}}}},
			},
		}
	}
	policy := func(g Gomega, ns string) v1alpha1.PolicyStatus {
		a := &v1alpha1.AutonomicApp{}
		g.Expect(k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "shop"}, a)).To(Succeed())
		for _, p := range a.Status.Policies {
			if p.Name == "web-failover" {
				g.Expect(a.Status.History).To(BeEmpty(), "nothing was changed")
				return p
			}
		}
		g.Expect(a.Status.Policies).NotTo(BeEmpty())
		return v1alpha1.PolicyStatus{}
	}

	It("waits for a missing Service, then says that no candidate can take traffic, changing nothing", func() {
		ns := newNS()
		foDeployment(ns, "web", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}})
		foDeployment(ns, "web-standby", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web-standby"}})
		app := foApp(ns)
		app.Spec.Policies[0].Failover.ScaleStandby = ptr.To(false)
		Expect(k8sClient.Create(testCtx, app)).To(Succeed())
		Eventually(func(g Gomega) {
			p := policy(g, ns)
			g.Expect(p.State).To(Equal(v1alpha1.PolicyWaiting))
			g.Expect(p.Reason).To(Equal(plan.ReasonServiceNotFound))
			g.Expect(p.Message).To(Equal("Service web was not found in the app's namespace; the policy elects a primary once it exists."))
		}).WithTimeout(10 * time.Second).Should(Succeed())

		Expect(k8sClient.Create(testCtx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
		})).To(Succeed())
		// Nothing brings the app back on a Service event until the Service watch is wired:
		// touch the app.
		Eventually(func() error {
			a := &v1alpha1.AutonomicApp{}
			if err := k8sClient.Get(testCtx, types.NamespacedName{Namespace: ns, Name: "shop"}, a); err != nil {
				return err
			}
			a.Annotations = map[string]string{"touched": "1"}
			return k8sClient.Update(testCtx, a)
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			p := policy(g, ns)
			g.Expect(p.Primary).To(Equal("web"))
			g.Expect(p.Reason).To(Equal(plan.ReasonNoHealthyCandidate))
			g.Expect(p.Message).To(Equal("The primary web cannot take traffic (scaled to 0) and no other candidate can " +
				"(web-standby: scaled to 0 and scaleStandby is false); Service/web keeps selecting web, and traffic moves as soon as a candidate is healthy."))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	It("refuses a candidate whose selector a Service cannot express", func() {
		ns := newNS()
		foDeployment(ns, "web", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}})
		foDeployment(ns, "web-standby", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web-standby"}}}})
		Expect(k8sClient.Create(testCtx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
		})).To(Succeed())
		Expect(k8sClient.Create(testCtx, foApp(ns))).To(Succeed())
		Eventually(func(g Gomega) {
			p := policy(g, ns)
			g.Expect(p.State).To(Equal(v1alpha1.PolicyInvalid))
			g.Expect(p.Reason).To(Equal(plan.ReasonUnsupportedSelector))
			g.Expect(p.Message).To(HavePrefix("The Deployment of candidate web-standby selects its pods with matchExpressions"))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})
})
