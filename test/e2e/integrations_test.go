package e2e

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/execute"
)

var _ = Describe("integrations", Label("kwok"), func() {
	ctx := context.Background()

	It("runs a Job to completion on kwok and records it, then POSTs the record over TLS with headers from a Secret", func() {
		ns := newNamespace("integrations")
		hook := startHookReceiver()
		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pager"},
			StringData: map[string]string{"Authorization": "Bearer e2e-token", "X-Team": "sre"},
		})).To(Succeed())

		createDeployment(ns, "web", "registry.local/shop/web:bad", 1)
		app := healApp(ns, "shop", "web", v1alpha1.ModeActive,
			step(runJob(jobTemplate("registry.local/tools/fix:good"), time.Minute), 10*time.Second),
			step(v1alpha1.Action{Webhook: &v1alpha1.WebhookAction{
				URL:         hook.URL + "/hook",
				HeadersFrom: &v1alpha1.SecretReference{Name: "pager"},
				CABundle:    hook.caBundle(),
				Timeout:     dur(2 * time.Second),
				Retries:     2,
			}}, time.Minute))
		Expect(k8s.Create(ctx, app)).To(Succeed())

		By("the ladder's first step runs a Job, which completes on a kwok node, and its outcome is recorded")
		var jobRec v1alpha1.ActionRecord
		Eventually(func(g Gomega) {
			rs := records(getApp(ns, "shop"), execute.KindRunJob)
			g.Expect(rs).To(HaveLen(1))
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded), rs[0].Message)
			jobRec = rs[0]
		}).WithTimeout(60 * time.Second).Should(Succeed())
		name := execute.JobName("shop", jobRec.ID)
		Expect(jobRec.Message).To(HavePrefix("Job " + name + " completed"))
		Expect(jobRec.Message).To(ContainSubstring("1 succeeded"))
		logf("runJob record: %s", jobRec.Message)

		var jobs batchv1.JobList
		Expect(k8s.List(ctx, &jobs, client.InNamespace(ns), client.MatchingLabels{execute.AppLabel: "shop"})).To(Succeed())
		Expect(jobs.Items).To(HaveLen(1), "one Job, however often the app was reconciled while it ran")
		job := jobs.Items[0]
		Expect(job.Name).To(Equal(name))
		Expect(job.Annotations).To(HaveKeyWithValue(v1alpha1.ActionIDAnnotation, jobRec.ID))
		a := getApp(ns, "shop")
		Expect(metav1.IsControlledBy(&job, a)).To(BeTrue(), "the app controls its Job")
		Expect(job.Status.Succeeded).To(Equal(int32(1)))
		Expect(job.Status.Conditions).To(ContainElement(And(
			HaveField("Type", batchv1.JobComplete), HaveField("Status", corev1.ConditionTrue))))
		var jobPods corev1.PodList
		Expect(k8s.List(ctx, &jobPods, client.InNamespace(ns), client.MatchingLabels{batchv1.JobNameLabel: name})).To(Succeed())
		Expect(jobPods.Items).NotTo(BeEmpty())
		for _, p := range jobPods.Items {
			Expect(p.Spec.NodeName).To(HavePrefix("kwok-"), "pod %s ran on a kwok node", p.Name)
			Expect(p.Status.Phase).To(Equal(corev1.PodSucceeded), "kwok's pod-complete stage ends a Job's pod")
		}

		By("the symptom is still active after the step's timeout: the webhook receives the record")
		var hookRec v1alpha1.ActionRecord
		Eventually(func(g Gomega) {
			rs := records(getApp(ns, "shop"), execute.KindWebhook)
			g.Expect(rs).To(HaveLen(1))
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultSucceeded), rs[0].Message)
			hookRec = rs[0]
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Expect(hookRec.Message).To(Equal("POST " + hook.URL + "/hook returned 202 Accepted"))
		Expect(hookRec.Target).To(Equal(hook.URL + "/hook"))
		Expect(hookRec.Step).To(Equal(int32(2)))

		got := hook.received()
		Expect(got).To(HaveLen(1), "one POST, no retry")
		Expect(got[0].header.Get("Authorization")).To(Equal("Bearer e2e-token"))
		Expect(got[0].header.Get("X-Team")).To(Equal("sre"))
		Expect(got[0].header.Get(execute.IdempotencyKeyHeader)).To(Equal(hookRec.ID))
		Expect(got[0].header.Get("Content-Type")).To(Equal("application/json"))
		Expect(got[0].tls).To(BeTrue())
		var body execute.WebhookPayload
		Expect(json.Unmarshal(got[0].body, &body)).To(Succeed())
		Expect(body.App).To(Equal(execute.WebhookApp{Namespace: ns, Name: "shop", UID: a.UID}))
		Expect(body.Record.ID).To(Equal(hookRec.ID))
		Expect(body.Record.Policy).To(Equal("heal-web"))
		Expect(body.Record.Action).To(Equal(execute.KindWebhook))
		Expect(body.Reason).NotTo(BeEmpty())
		Expect(body.Reason).To(Equal(hookRec.Reason))

		By("the Job goes with the app that owns it")
		Expect(k8s.Delete(ctx, a)).To(Succeed())
		Eventually(func() bool {
			err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &batchv1.Job{})
			return apierrors.IsNotFound(err)
		}).WithTimeout(60*time.Second).Should(BeTrue(), "the garbage collector deletes the Job of a deleted app")
	})

	It("records a Job that fails with the Job's reason", func() {
		ns := newNamespace("integrations-fail")
		createDeployment(ns, "web", "registry.local/shop/web:bad", 1)
		app := healApp(ns, "shop", "web", v1alpha1.ModeActive,
			step(runJob(jobTemplate("registry.local/tools/fix:bad"), time.Minute), time.Minute))
		Expect(k8s.Create(ctx, app)).To(Succeed())

		Eventually(func(g Gomega) {
			rs := records(getApp(ns, "shop"), execute.KindRunJob)
			g.Expect(rs).To(HaveLen(1))
			g.Expect(rs[0].Result).To(Equal(v1alpha1.ResultFailed), rs[0].Message)
			g.Expect(rs[0].Message).To(ContainSubstring("BackoffLimitExceeded"))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		logf("runJob record: %s", records(getApp(ns, "shop"), execute.KindRunJob)[0].Message)
		var jobs batchv1.JobList
		Expect(k8s.List(ctx, &jobs, client.InNamespace(ns))).To(Succeed())
		Expect(jobs.Items).To(HaveLen(1), "a failed Job is not created again")
	})
})

func runJob(template apiextensionsv1.JSON, timeout time.Duration) v1alpha1.Action {
	return v1alpha1.Action{RunJob: &v1alpha1.RunJobAction{Template: template, Timeout: dur(timeout)}}
}

// jobTemplate is a Job of one container that is not retried; on kwok an image ending in
// ":bad" fails and any other completes.
func jobTemplate(image string) apiextensionsv1.JSON {
	raw, err := json.Marshal(batchv1.JobTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"purpose": "fix"}},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To(int32(0)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "fix", Image: image}},
			}},
		},
	})
	Expect(err).NotTo(HaveOccurred())
	return apiextensionsv1.JSON{Raw: raw}
}

// hookReceiver is a webhook receiver the test runs over TLS on 127.0.0.1, never any
// other address. It answers 202 and keeps every request.
type hookReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []hookRequest
}

type hookRequest struct {
	header http.Header
	body   []byte
	tls    bool
}

func startHookReceiver() *hookReceiver {
	h := &hookReceiver{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/hook" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{header: r.Header.Clone(), body: body, tls: r.TLS != nil})
		h.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	_ = h.Listener.Close()
	h.Listener = l
	h.Config.ErrorLog = log.New(GinkgoWriter, "hook receiver: ", 0)
	h.StartTLS()
	DeferCleanup(h.Close)
	return h
}

func (h *hookReceiver) received() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

// caBundle is the PEM of the receiver's certificate, for webhook.caBundle.
func (h *hookReceiver) caBundle() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.Certificate().Raw}))
}
