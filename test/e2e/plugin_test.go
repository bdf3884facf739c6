package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
	"github.com/homeostat-dev/homeostat/internal/cli"
	"github.com/homeostat-dev/homeostat/internal/execute"
	"github.com/homeostat-dev/homeostat/internal/replay"
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

	It("shows a crash-loop episode in order: symptom, intent, eviction, rollback, recovery", func() {
		ns := newNamespace("timeline")
		createDeployment(ns, "web", "registry.local/shop/web:good", 3)
		waitRunning(ns, "web", ":good", 3)
		app := healApp(ns, "shop", "web", v1alpha1.ModeActive,
			step(restartPods("web"), 8*time.Second),
			step(rollback("web"), 30*time.Second),
			step(notify("web keeps crashing after restart and rollback"), time.Minute))
		app.Spec.Policies[0].Remediate.VerifyFor = dur(5 * time.Second)
		Expect(k8s.Create(ctx, app)).To(Succeed())
		waitReady(ns, "shop")

		By("rolling out a release whose containers crash, and waiting for the rollback to hold")
		setImage(ns, "web", "registry.local/shop/web:bad")
		Eventually(func(g Gomega) {
			a := getApp(ns, "shop")
			g.Expect(records(a, "rollback")).NotTo(BeEmpty())
			g.Expect(policyStatus(a, "heal-web").Reason).To(Equal("Healed"))
		}).WithTimeout(90 * time.Second).Should(Succeed())

		By("timeline -o json lists the episode in order")
		var tl cli.TimelineResult
		Eventually(func(g Gomega) {
			out, _, code := kubectl("timeline", "shop", "-n", ns, "-o", "json")
			g.Expect(code).To(Equal(cli.ExitOK))
			g.Expect(json.Unmarshal([]byte(out), &tl)).To(Succeed())
			g.Expect(indexOf(tl.Entries, func(e cli.TimelineEntry) bool { return e.Reason == "ActionVerified" && e.Action == "rollback" })).To(BeNumerically(">=", 0))
		}).WithTimeout(20 * time.Second).Should(Succeed())
		at := func(what string, match func(e cli.TimelineEntry) bool) int {
			i := indexOf(tl.Entries, match)
			Expect(i).To(BeNumerically(">=", 0), "the timeline has no %s", what)
			return i
		}
		symptom := at("SymptomBecameActive", func(e cli.TimelineEntry) bool {
			return e.Kind == cli.TimelineKind("Symptom") && e.Reason == "SymptomBecameActive"
		})
		intent := at("the restartPods action", func(e cli.TimelineEntry) bool {
			return e.Kind == cli.TimelineKind("Action") && e.Action == "restartPods" && e.Reason == "ActionSucceeded"
		})
		Expect(tl.Entries[intent].Message).To(ContainSubstring("Evicted"), "the action names the pods it evicted")
		evicted := at("a replacement pod after the eviction", func(e cli.TimelineEntry) bool {
			return e.Reason == "SuccessfulCreate" && !e.Time.Before(tl.Entries[intent].Time)
		})
		rollback := at("the rollback action", func(e cli.TimelineEntry) bool {
			return e.Kind == cli.TimelineKind("Action") && e.Action == "rollback" && e.Reason == "ActionSucceeded"
		})
		rolled := at("the Deployment rolling back", func(e cli.TimelineEntry) bool {
			return e.Source == "Deployment/web" && e.Reason == "ScalingReplicaSet" && !e.Time.Before(tl.Entries[rollback].Time)
		})
		cleared := at("SymptomCleared", func(e cli.TimelineEntry) bool {
			return e.Kind == cli.TimelineKind("Symptom") && e.Reason == "SymptomCleared" && !e.Time.Before(tl.Entries[rollback].Time)
		})
		verified := at("the rollback verified", func(e cli.TimelineEntry) bool {
			return e.Kind == cli.TimelineKind("Outcome") && e.Reason == "ActionVerified" && e.Action == "rollback"
		})
		Expect(symptom).To(BeNumerically("<", intent))
		Expect(intent).To(BeNumerically("<", evicted))
		Expect(evicted).To(BeNumerically("<", rollback))
		Expect(rollback).To(BeNumerically("<", rolled))
		Expect(rolled).To(BeNumerically("<", verified))
		Expect(cleared).To(BeNumerically("<", verified))
		for i := 1; i < len(tl.Entries); i++ {
			Expect(tl.Entries[i].Time.Truncate(time.Second).Before(tl.Entries[i-1].Time.Truncate(time.Second))).To(BeFalse(),
				"entry %d (%s) is listed after a later one", i, tl.Entries[i].Reason)
		}

		By("timeline prints it for a person, at 100 and at 50 columns")
		out, _, code := kubectl("timeline", "shop", "-n", ns)
		Expect(code).To(Equal(cli.ExitOK))
		Expect(out).To(ContainSubstring("restartPods Succeeded"))
		Expect(out).To(ContainSubstring("rollback Succeeded"))
		out, _, code = kubectl("timeline", "shop", "-n", ns, "--width", "50")
		Expect(code).To(Equal(cli.ExitOK))
		for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			Expect(len([]rune(l))).To(BeNumerically("<=", 50+40), "a line far wider than 50 columns: %q", l)
		}
	})

	It("replays a recorded load step: the manager's scale decisions, and fewer with a wider band", func() {
		const sensorInterval = 2 * time.Second
		ns := newNamespace("simulate")
		exporter := startExporter()
		exporter.set(ns, 10)
		prom := startPrometheus(exporter.addr, mgr.metricsAddr)
		createDeployment(ns, "web", "registry.local/shop/web:good", 1)
		// The load per replica: the scenario's total over web's replicas as the manager
		// exports them, so a scale spreads the load as it would in a real app, and the
		// history holds both.
		perReplica := fmt.Sprintf(`sum(%s) / sum(homeostat_component_sensor{namespace=%q,app="shop",component="web",sensor="desiredReplicas"})`,
			loadSelector(ns), ns)
		window := func(d time.Duration) *autoscalingv2.HPAScalingRules {
			return &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To(int32(d / time.Second))}
		}
		app := &v1alpha1.AutonomicApp{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "AutonomicApp"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
			Spec: v1alpha1.AutonomicAppSpec{
				Components: []v1alpha1.Component{workload("web", "web")},
				Healing: v1alpha1.Healing{
					Sensors: []v1alpha1.Sensor{{Name: "load", Interval: dur(sensorInterval),
						Prometheus: &v1alpha1.PrometheusSensor{Address: prom.url(), Query: perReplica}}},
					Policies: []v1alpha1.Policy{{Name: "scale-web", Autoscale: &v1alpha1.AutoscalePolicy{
						Component: "web", MinReplicas: ptr.To(int32(1)), MaxReplicas: 10,
						Metrics: []v1alpha1.AutoscaleMetric{{Sensor: "load", Band: &v1alpha1.Band{Lower: "5", Upper: "15"}}},
						// Short windows smooth over a reading taken between a scale and
						// Prometheus' next scrape of the replicas.
						Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: window(3 * time.Second), ScaleDown: window(3 * time.Second)},
					}}},
				},
			},
		}
		Expect(k8s.Create(ctx, app.DeepCopy())).To(Succeed())
		waitReady(ns, "shop")
		Eventually(func(g Gomega) {
			g.Expect(getApp(ns, "shop").Status.Sensors).To(ContainElement(HaveField("Value", "10")))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		start := time.Now().Add(-2 * time.Second)

		By("the load steps 10 -> 40 -> 100 -> 20; the band [5, 15] follows it")
		replicasOf := func() int32 { return *policyStatus(getApp(ns, "shop"), "scale-web").DesiredReplicas }
		for _, step := range []struct {
			load float64
			want int32
		}{{40, 3}, {100, 7}, {20, 4}} {
			exporter.set(ns, step.load)
			Eventually(replicasOf).WithTimeout(40*time.Second).Should(Equal(step.want), "load %v", step.load)
			// Steady past the rate policies' 15s period, so each step is one scale.
			time.Sleep(16 * time.Second)
		}
		live := records(getApp(ns, "shop"), execute.KindScale)
		Expect(live).To(HaveLen(3))
		end := time.Now()
		// Prometheus has scraped the last readings.
		time.Sleep(2 * scrapeInterval)

		By("simulate over the recorded range makes the same scale decisions")
		// One-second steps, Prometheus' resolution here, so that a decision falls within a
		// second of the reading that allowed it.
		out, stderr, code := kubectl("simulate", "shop", "-n", ns, "--from", start.UTC().Format(time.RFC3339),
			"--to", end.UTC().Format(time.RFC3339), "--step", "1s", "--prometheus", prom.url(), "-o", "json")
		Expect(code).To(Equal(cli.ExitOK), stderr)
		var sim cli.SimulateResult
		Expect(json.Unmarshal([]byte(out), &sim)).To(Succeed())
		var scales []replay.Decision
		for _, d := range sim.Current.Decisions {
			if d.Kind == "Act" && d.Action == execute.KindScale {
				scales = append(scales, d)
			}
		}
		Expect(scales).To(HaveLen(len(live)), "simulated scales %v, live %v", scales, live)
		for i, d := range scales {
			Expect(*d.Replicas).To(Equal(*live[i].Replicas), "scale %d", i)
			// Within one sensor interval.
			Expect(d.Time.Sub(live[i].Time.Time).Abs()).To(BeNumerically("<=", sensorInterval),
				"scale %d to %d: simulated at %s, the manager at %s", i, *d.Replicas, d.Time, live[i].Time)
		}

		By("an edited policy with a wider band [2, 40] acts less")
		edited := app.DeepCopy()
		edited.Spec.Policies[0].Autoscale.Metrics[0].Band = &v1alpha1.Band{Lower: "2", Upper: "40"}
		b, err := yaml.Marshal(edited)
		Expect(err).NotTo(HaveOccurred())
		file := filepath.Join(GinkgoT().TempDir(), "wider.yaml")
		Expect(os.WriteFile(file, b, 0o644)).To(Succeed())
		out, stderr, code = kubectl("simulate", "shop", "-n", ns, "--from", start.UTC().Format(time.RFC3339),
			"--to", end.UTC().Format(time.RFC3339), "--prometheus", prom.url(), "--policy-file", file, "-o", "json")
		Expect(code).To(Equal(cli.ExitOK), stderr)
		Expect(json.Unmarshal([]byte(out), &sim)).To(Succeed())
		Expect(sim.Edited).NotTo(BeNil())
		Expect(sim.Current.Policies[0].Actions).To(Equal(3))
		Expect(sim.Edited.Policies[0].Actions).To(BeNumerically("<", sim.Current.Policies[0].Actions))

		By("and prints the comparison for a person")
		out, _, code = kubectl("simulate", "shop", "-n", ns, "--from", start.UTC().Format(time.RFC3339),
			"--to", end.UTC().Format(time.RFC3339), "--prometheus", prom.url(), "--policy-file", file)
		Expect(code).To(Equal(cli.ExitOK))
		Expect(out).To(ContainSubstring("scale-web"))

		By("without Prometheus it says how to give it")
		_, stderr, code = kubectl("simulate", "shop", "-n", ns, "--from", "-10m")
		Expect(code).To(Equal(cli.ExitPrometheus))
		Expect(stderr).To(ContainSubstring("--prometheus"))
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

// indexOf is the index of the first entry that matches, or -1.
func indexOf(es []cli.TimelineEntry, match func(cli.TimelineEntry) bool) int {
	for i, e := range es {
		if match(e) {
			return i
		}
	}
	return -1
}
