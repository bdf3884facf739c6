package e2e

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

var _ = Describe("StatefulSet rollback", Label("kwok"), func() {
	ctx := context.Background()

	// The StatefulSet controller rolls a release out from the highest ordinal down and,
	// with the default OrderedReady pod management, waits for each pod to be Running and
	// Ready: a release that never becomes ready leaves its first pod crash-looping and the
	// rollout stuck, and changing the template back alone does not unstick it.
	It("returns a StatefulSet stuck on a crash-looping release to the previous revision, and its pods come back healthy", func() {
		ns := newNamespace("sts")
		labels := map[string]string{"app": "db"}
		Expect(k8s.Create(ctx, &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
			Spec: appsv1.StatefulSetSpec{
				Replicas: ptr.To(int32(3)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "db", Image: "registry.local/shop/db:good",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
					}}},
				},
			},
		})).To(Succeed())
		waitRunning(ns, "db", ":good", 3)

		app := healApp(ns, "shop", "db", v1alpha1.ModeActive,
			step(rollback("web"), time.Minute),
			step(notify("db keeps crashing after the rollback"), time.Minute))
		app.Spec.Components[0].WorkloadRef.Kind = "StatefulSet"
		Expect(k8s.Create(ctx, app)).To(Succeed())
		waitReady(ns, "shop")

		By("rolling out a release whose containers crash: the controller replaces db-2 and waits for it")
		Eventually(func() error {
			s := &appsv1.StatefulSet{}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "db"}, s); err != nil {
				return err
			}
			s.Spec.Template.Spec.Containers[0].Image = "registry.local/shop/db:bad"
			return k8s.Update(ctx, s)
		}).Should(Succeed())

		By("the rollback returns the template and deletes the stuck pod")
		var rec v1alpha1.ActionRecord
		Eventually(func(g Gomega) {
			rs := records(getApp(ns, "shop"), "rollback")
			g.Expect(rs).To(HaveLen(1))
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded), rs[0].Message)
			rec = rs[0]
		}).WithTimeout(60 * time.Second).Should(Succeed())
		logf("rollback: %s: %s", rec.Target, rec.Message)
		Expect(rec.Target).To(Equal("StatefulSet/db to revision 1"))
		Expect(rec.Message).To(HavePrefix("Rolled StatefulSet/db back to revision 1 (ControllerRevision db-"))
		Expect(rec.Message).To(ContainSubstring("stuck on the old revision (db-2)"))
		s := &appsv1.StatefulSet{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "db"}, s)).To(Succeed())
		Expect(s.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":good"))
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, rec.ID))

		By("every pod runs the good release again, and the episode heals without the next step")
		Eventually(func(g Gomega) {
			g.Expect(runningReady(ns, "db", ":good")).To(Equal(3))
			g.Expect(runningReady(ns, "db", ":bad")).To(BeZero())
			a := getApp(ns, "shop")
			g.Expect(a.Status.Phase).To(Equal(v1alpha1.PhaseHealthy))
			g.Expect(policyStatus(a, "heal-web").Reason).To(Equal("Healed"))
		}).WithTimeout(90 * time.Second).Should(Succeed())
		Expect(records(getApp(ns, "shop"), "notify")).To(BeEmpty(), "the ladder stopped once healed")
	})
})
