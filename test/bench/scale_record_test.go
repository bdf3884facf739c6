package bench

import (
	"fmt"
	"math"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func rawMerge(patch string) client.Patch { return client.RawPatch(types.MergePatchType, []byte(patch)) }

func one(v float64) []float64 {
	if math.IsNaN(v) {
		return nil
	}
	return []float64{v}
}

// record writes the working tree's figures at one scale.
func (r *scaleRun) record(label string, vf *variantFigures, res *scaleResult) {
	floor := &Figure{Name: "reference controller patches the pod, " + label, Unit: "ms", Samples: vf.floorAct}
	Record("detect-to-act",
		Figure{Name: "detect-to-act: pod stamped before eviction, " + label, Unit: "ms", Samples: vf.stamp, Baseline: floor,
			Note: "From the response to the pod's status update (CrashLoopBackOff) to the arrival, at this test's pod informer, of " +
				"the manager's action-id patch of that pod: its first call on the workload, made right before the eviction."},
		Figure{Name: "detect-to-intent: ledger intent written, " + label, Unit: "ms", Samples: vf.intent, Baseline: floor,
			Note: "From the same response to the arrival, at this test's app informer, of the app's status with the Pending " +
				"restartPods record: the manager's first mutating call, written before any effector runs."},
		Figure{Name: "manager's own detect-to-act, " + label, Unit: "ms", Samples: vf.managerView,
			Note: fmt.Sprintf("homeostat_detect_to_act_seconds per trial (the histogram's sum, differenced): from the manager's watch "+
				"event to the effector's start. The record's detectedAt (whole seconds) fell within the change's second or the next "+
				"in %d of %d trials.", vf.detectedAtOK, len(vf.stamp))},
		Figure{Name: "reference controller patches the pod, " + label, Unit: "ms", Samples: vf.floorAct,
			Baseline: &Figure{Name: "bare informer sees the status change, " + label, Unit: "ms", Samples: vf.floorInformer},
			Note: "The floor of the figures above: a controller in this process (an informer on pods, one worker) that patches " +
				"an annotation onto a pod when it turns crash-looping, and nothing else, timed as the manager's stamp is. Its " +
				"own baseline is a bare informer seeing the status change."},
		Figure{Name: "status update request round trip, " + label, Unit: "ms", Samples: vf.roundTrip,
			Note: "The test's UpdateStatus call, sent to response; 'accepted' above is its response."},
		Figure{Name: "manager API requests per detect-to-act trial, " + label, Unit: "requests", Samples: vf.reqPerTrial,
			Note: "Intent, pod stamp, eviction, outcome, Events; over the trial and the reconciles it caused."},
	)
	Note("detect-to-act", "The floor is a reference controller that does the job of the manager's first call and nothing "+
		"else (see its figure): the ratios say what Homeostat's judgement, ledger and guards cost over seeing a pod's change "+
		"and writing to it. Every figure is timed from the same instant, the response to the test's status update, to the "+
		"arrival of the write at this test's informer.")
	if vf.trialsFailed > 0 {
		Note("detect-to-act", fmt.Sprintf("%s: %d trials failed (no stamp within 30 s) and are not in the figures.", label, vf.trialsFailed))
	}
	rss0 := &Figure{Name: "manager RSS with no app", Unit: "MiB", Samples: res.rss0}
	Record("scale",
		Figure{Name: "cold start to every app reconciled, " + label, Unit: "s", Samples: []float64{vf.coldStart},
			Baseline: &Figure{Name: "a bare client writes one small status per app, 4 at a time", Unit: "s", Samples: []float64{vf.writeFloor}},
			Note: "From the manager's process start to the last app's status of its generation with Ready=True, as this test's app " +
				"informer sees it. The manager writes one status per app with 4 workers (--max-concurrent-reconciles)."},
		Figure{Name: "manager CPU during the cold start, " + label, Unit: "s", Samples: []float64{vf.coldCPU},
			Note: "utime + stime of the process from its start to the last app reconciled, informer sync included."},
		Figure{Name: "a bare informer lists and syncs apps, Deployments, ReplicaSets and pods, " + label, Unit: "s", Samples: []float64{vf.floor},
			Note: "A fresh cache in this test's process: the least time any manager needs to see every object."},
		Figure{Name: "manager RSS after settling, " + label, Unit: "MiB", Samples: vf.rss, Baseline: rss0,
			Note: "VmRSS every 5 s over a minute in which every app is healthy; the baseline is the same binary on the same cluster before any object existed."},
		Figure{Name: "manager RSS per app, " + label, Unit: "KiB", Samples: vf.perAppKiB,
			Baseline: &Figure{Name: "one app's objects as JSON (app, Deployment, ReplicaSet, 3 pods)", Unit: "KiB", Samples: []float64{res.objectsKiB}},
			Note:     "(RSS(N) - median RSS(0)) / N."},
		Figure{Name: "API writes per minute, idle, " + label, Unit: "writes/min", Samples: vf.idleWrites,
			Note: "POST, PUT, PATCH and DELETE in rest_client_requests_total, three windows of 20 s with every app healthy. Target: 0."},
		Figure{Name: "API requests per minute, idle, " + label, Unit: "requests/min", Samples: vf.idleReqs},
		Figure{Name: "API requests per reconcile, spec edits, " + label, Unit: "requests/reconcile", Samples: vf.reqPerEdit,
			Note: "Three bursts of spec edits of 200 apps (or all); each edit needs exactly one status write. rest_client_requests_total / controller_runtime_reconcile_total, differenced over the burst."},
		Figure{Name: "API writes per reconcile, spec edits, " + label, Unit: "writes/reconcile", Samples: vf.writesPerEdit},
		Figure{Name: "API requests per reconcile, Deployment touches, " + label, Unit: "requests/reconcile", Samples: vf.reqPerTouch,
			Note: "Three bursts of annotation changes on 200 Deployments: every app is reconciled and nothing changes. Target: 0."},
	)
}

// scaleFixes are what the profiles at 1,000 and 10,000 apps showed and what was changed.
var scaleFixes = []string{
	"Fix 1, an index (controllers/nodes.go): every Node event listed and deep-copied every app to find those the node " +
		"guard holds. A starting manager gets one event per node, so at 10,000 apps on 300 nodes that was 3 million copies, " +
		"23% of the manager's CPU during the cold start. Apps held by the node guard are now indexed, and a Node event reads only them.",
	"Fix 2, no copies for lookups (controllers, internal/monitor/gather.go): the pod and workload event handlers, the " +
		"storm breaker's count and the wait for the cache read cached apps and ReplicaSets only for their names, resource " +
		"versions and owners; they read them without deep copies (client.UnsafeDisableDeepCopy).",
	"Fix 3, the wait for the cache moves to the next reconcile (controllers/autonomicapp_controller.go): after writing " +
		"status, a worker waited until its informer had the write, so the next reconcile of the app would not read an older " +
		"ledger. The same guarantee now comes from waiting at the start of that next reconcile (usually no wait by then), and " +
		"it also holds after a reconcile that wrote and then failed. Each worker is free one watch round trip sooner.",
	"Fix 4, lighter cached pods (internal/monitor/trim.go): pods are most of the cache (3 per app). Their cached copy keeps " +
		"only what sensors and effectors read: of the spec, node, containers' names, images, requests and restart policies; " +
		"of the status, phase, the Ready condition and per container ready, restarts, state and last state without messages. " +
		"A kwok pod went from 4.4 KB to 3.6 KB of heap; real pods, with more conditions, IPs, image ids and limits, save more.",
	"Measured by hand during profiling, 10,000 apps, A/B runs alternated on one cluster: cold start 59-62 s before fixes " +
		"1-3, 44 s after; manager CPU during it 22.7-24.7 s before, 13.3-14.6 s after. More workers " +
		"(--max-concurrent-reconciles 16) did not help: the API server is the bottleneck on 2 cores.",
}

// recordImprovements writes the before/after figures of the same scale and run.
func (r *scaleRun) recordImprovements(label string, before, after *variantFigures, rev string) {
	pair := func(name, unit string, a, b []float64, note string) Figure {
		return Figure{Name: name + " (after)", Unit: unit, Samples: a, Note: note,
			Baseline: &Figure{Name: name + " (before, " + rev + ")", Unit: unit, Samples: b}}
	}
	// The fixes' own comparison is against scaleBeforeRev; any other revision is a
	// regression check of a later change, in a section of its own.
	section := "improvements"
	if rev != scaleBeforeRev {
		section = "before and after " + rev
	} else {
		for _, fix := range scaleFixes {
			Note(section, fix)
		}
	}
	Note(section, fmt.Sprintf("Before is the manager built from commit %s (git archive); after is the working tree. "+
		"Both ran in the same run on the same cluster of %s, one after the other (the app statuses were cleared in between, "+
		"so both cold starts start from nothing). The ratio is after / before.", rev, label))
	Record(section,
		pair("cold start, "+label, "s", one(after.coldStart), one(before.coldStart), ""),
		pair("manager CPU during the cold start, "+label, "s", one(after.coldCPU), one(before.coldCPU), ""),
		pair("manager RSS after settling, "+label, "MiB", after.rss, before.rss, ""),
		pair("manager RSS with no app", "MiB", after.rss0, before.rss0, ""),
		pair("manager RSS per app, "+label, "KiB", after.perAppKiB, before.perAppKiB, ""),
		pair("API writes per minute, idle, "+label, "writes/min", after.idleWrites, before.idleWrites, ""),
		pair("API requests per reconcile, spec edits, "+label, "requests/reconcile", after.reqPerEdit, before.reqPerEdit, ""),
		pair("API requests per reconcile, Deployment touches, "+label, "requests/reconcile", after.reqPerTouch, before.reqPerTouch, ""),
		pair("detect-to-act: pod stamped, "+label, "ms", after.stamp, before.stamp, ""),
		pair("detect-to-intent, "+label, "ms", after.intent, before.intent, ""),
		pair("manager API requests per detect-to-act trial, "+label, "requests", after.reqPerTrial, before.reqPerTrial, ""),
	)
}

// recordCapacity extrapolates the largest app count under 1 GiB from the per-app memory
// at the largest scale measured, and checks it against the RSS measured there.
func recordCapacity(t *testing.T, results []scaleResult) {
	if len(results) == 0 {
		return
	}
	last := results[len(results)-1]
	for _, r := range results {
		if r.apps > last.apps {
			last = r
		}
	}
	base, per, rss := Summarize(last.rss0), Summarize(last.perAppKiB), Summarize(last.rss)
	if base == nil || per == nil || rss == nil || per.Median <= 0 {
		return
	}
	const budgetMiB = 1024
	apps := (budgetMiB - base.Median) * 1024 / per.Median
	appsP99 := (budgetMiB - base.Median) * 1024 / per.P99
	verdict := "below"
	if rss.P99 >= budgetMiB {
		verdict = "above"
	}
	Record("scale", Figure{Name: "largest app count under 1 GiB of manager RSS (extrapolated)", Unit: "apps",
		Samples: []float64{math.Floor(apps)},
		Note: fmt.Sprintf("(1024 MiB - RSS(0) %.0f MiB) / %.1f KiB per app (median at %d apps); %.0f apps with the p99 per-app "+
			"figure. Verified at the largest count run: %d apps, RSS p99 %.0f MiB, %s 1 GiB.",
			base.Median, per.Median, last.apps, appsP99, last.apps, rss.P99, verdict)})
	t.Logf("Largest app count under 1 GiB: about %.0f (from %.1f KiB/app at %d apps)", apps, per.Median, last.apps)
}
