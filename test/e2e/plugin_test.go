package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/cli"
)

// The plugin specs run `kubectl homeostat` as a user does: the plugin binary built from
// cmd/kubectl-homeostat on PATH, found and run by the pinned kubectl, against the
// suite's cluster and its manager, with a real Prometheus that scrapes the manager.
var _ = Describe("kubectl homeostat", Ordered, ContinueOnFailure, Label("plugin"), func() {
	ctx := context.Background()
	var binDir string

	BeforeAll(func() {
		By("building the plugin")
		binDir = GinkgoT().TempDir()
		build := exec.Command("go", "build", "-o", filepath.Join(binDir, "kubectl-homeostat"), "./cmd/kubectl-homeostat")
		build.Dir, build.Stdout, build.Stderr = repoRoot, GinkgoWriter, GinkgoWriter
		Expect(build.Run()).To(Succeed())
	})

	// kubectl runs `kubectl homeostat args...` and returns its output and exit code.
	kubectl := func(args ...string) (stdout, stderr string, code int) {
		cmd := exec.Command("kubectl", append([]string{"homeostat"}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+kubeconfigPath, "COLUMNS=100")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			code = ee.ExitCode()
		case err != nil:
			Fail("running kubectl homeostat: " + err.Error())
		}
		logf("$ kubectl homeostat %s\n%s%s(exit %d)", strings.Join(args, " "), out.String(), errOut.String(), code)
		return out.String(), errOut.String(), code
	}

	It("names the guard that holds a policy and the time it lifts", func() {
		ns := newNamespace("why")
		createDeployment(ns, "web", "registry.local/shop/web:good", 1)
		// The symptom holds at once; step 1 notifies and times out after 1s; step 2 is
		// then held by the cooldown of 10 minutes that step 1 started.
		app := &v1alpha1.AutonomicApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
			Spec: v1alpha1.AutonomicAppSpec{
				Components: []v1alpha1.Component{workload("web", "web")},
				Healing: v1alpha1.Healing{
					Symptoms: []v1alpha1.Symptom{{Name: "Always", Expression: "components.web.desiredReplicas >= 0"}},
					Policies: []v1alpha1.Policy{{Name: "page", Remediate: &v1alpha1.RemediatePolicy{When: []string{"Always"}, Steps: []v1alpha1.RemediationStep{
						step(notify("first"), time.Second), step(notify("second"), time.Minute)}}}},
					Guards: &v1alpha1.Guards{Cooldown: dur(10 * time.Minute)},
				},
			},
		}
		Expect(k8s.Create(ctx, app)).To(Succeed())
		var held v1alpha1.PolicyStatus
		Eventually(func(g Gomega) {
			held = policyStatus(getApp(ns, "shop"), "page")
			g.Expect(held.State).To(Equal(v1alpha1.PolicyHeld))
			g.Expect(held.Step).To(Equal(int32(2)))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		first := records(getApp(ns, "shop"), "notify")
		Expect(first).To(HaveLen(1))
		lifts := first[0].Time.Add(10 * time.Minute)

		By("why -o json says Cooldown, and when it lifts")
		out, _, code := kubectl("why", "shop", "-n", ns, "-o", "json")
		Expect(code).To(Equal(cli.ExitOK))
		var w cli.Why
		Expect(json.Unmarshal([]byte(out), &w)).To(Succeed())
		Expect(w.Policies).To(HaveLen(1))
		p := w.Policies[0]
		Expect(p.HeldBy).To(Equal("Cooldown"))
		Expect(p.HeldUntil).NotTo(BeNil())
		Expect(p.HeldUntil.Equal(lifts)).To(BeTrue(), "held until %s, want the first action's time plus the cooldown, %s", p.HeldUntil, lifts)
		Expect(p.Next).NotTo(BeNil())
		Expect(p.Next.Step).To(Equal(int32(2)))
		Expect(p.Next.At.Equal(lifts)).To(BeTrue())
		Expect(w.Symptoms).To(HaveLen(1))
		Expect(w.Symptoms[0].Active).To(BeTrue())
		Expect(w.Symptoms[0].Reads).To(ContainElement(cli.WhyValue{Name: "components.web.desiredReplicas", Value: "1"}))

		By("why prints it for a person")
		out, _, code = kubectl("why", "shop", "-n", ns)
		Expect(code).To(Equal(cli.ExitOK))
		Expect(out).To(ContainSubstring("page (remediate): Held by Cooldown until " + lifts.UTC().Format("15:04:05Z")))
		Expect(out).To(ContainSubstring("next: step 2 (notify) acts once no guard holds it"))

		By("pause holds it by the annotation, resume lifts it")
		_, _, code = kubectl("pause", "shop", "-n", ns, "--reason", "e2e")
		Expect(code).To(Equal(cli.ExitOK))
		Expect(getApp(ns, "shop").Annotations).To(HaveKeyWithValue(v1alpha1.PausedAnnotation, "e2e"))
		out, _, _ = kubectl("why", "shop", "-n", ns, "-o", "json")
		Expect(json.Unmarshal([]byte(out), &w)).To(Succeed())
		Expect(w.Paused).To(Equal("e2e"))
		Expect(w.Guards.Verdict.Reason).To(Equal("Paused"))
		_, _, code = kubectl("resume", "shop", "-n", ns)
		Expect(code).To(Equal(cli.ExitOK))
		Expect(getApp(ns, "shop").Annotations).NotTo(HaveKey(v1alpha1.PausedAnnotation))
	})

	It("ends with an exit code a script can tell apart", func() {
		ns := newNamespace("codes")
		_, stderr, code := kubectl("why", "nothere", "-n", ns)
		Expect(code).To(Equal(cli.ExitNotFound))
		Expect(stderr).To(ContainSubstring("AutonomicApp " + ns + "/nothere: not found"))

		_, stderr, code = kubectl("why", "nothere", "-n", ns, "--as", "system:serviceaccount:"+ns+":nobody")
		Expect(code).To(Equal(cli.ExitForbidden))
		Expect(stderr).To(ContainSubstring("ask your cluster admin"))

		_, stderr, code = kubectl("why")
		Expect(code).To(Equal(cli.ExitUsage))
		Expect(stderr).To(ContainSubstring("name the AutonomicApp"))

		_, stderr, code = kubectl("why", "x", "-o", "table")
		Expect(code).To(Equal(cli.ExitUsage))
		Expect(stderr).To(ContainSubstring(`--output "table" is not supported`))
	})
})
