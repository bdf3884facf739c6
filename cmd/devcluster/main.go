// Command devcluster runs the local control plane of internal/devcluster: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok with fake nodes.
//
//	devcluster up [flags] [-- command [args...]]
//	devcluster run --manager <binary> [flags] [-- manager args...]
//
// up starts a cluster, writes its kubeconfig, prints `export KUBECONFIG=<path>` and runs
// until SIGINT or SIGTERM; given a command, it runs that command against the cluster
// (KUBECONFIG set) and exits with it. Everything it started is stopped on the way out, and
// dies with it if it is killed.
//
// run is `make run`: it runs the manager against KUBECONFIG's cluster when that answers,
// and otherwise starts the cluster named homeostat, installs the CRDs of config/crd/bases,
// applies config/samples, starts the demo (below) and runs the manager against it. Either
// way the manager runs with webhooks off (ENABLE_WEBHOOKS=false): it has no serving
// certificate here.
//
// The demo (internal/devcluster/demo, --demo, on by default for run) serves what the
// samples' sensors read on a cluster without kubelets or a monitoring stack:
// metrics.k8s.io, a load exporter on 127.0.0.1 and Prometheus on 127.0.0.1:9090
// (--prometheus-address) scraping it and the manager's --metrics-bind-address, all driven
// by the load in the ConfigMap homeostat-demo/demo-load (data.rps, requests a second):
//
//	kubectl -n homeostat-demo patch configmap demo-load --type merge -p '{"data":{"rps":"900"}}'
//
// Against KUBECONFIG's cluster there is no demo: devcluster installs nothing there, and the
// autoscale sample's sensors read that cluster's metrics-server and Prometheus.
//
//	go run ./cmd/devcluster up --nodes 3 --kubeconfig bin/kubeconfig --crashloop-stage
//	go run ./cmd/devcluster run --manager bin/manager
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/homeostat-dev/homeostat/internal/devcluster"
	"github.com/homeostat-dev/homeostat/internal/devcluster/demo"
)

// say writes a message for the person at the terminal; there is nobody to tell if that fails.
func say(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// stringList is a flag that may be given more than once.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// clusterFlags are the flags of the cluster that up and run start.
type clusterFlags struct {
	opts        devcluster.Options
	kubeconfig  string
	crashloop   bool
	verbose     bool
	stageFiles  stringList
	crdPaths    stringList
	samplePaths stringList
	demo        bool
	prometheus  string
}

func (f *clusterFlags) register(fs *flag.FlagSet, defaultName string, defaultDemo bool) {
	fs.StringVar(&f.opts.Name, "name", defaultName, "name of the cluster: it then works in $HOMEOSTAT_CACHE/clusters/<name> and a killed run is cleaned up by the next; empty: a temporary directory")
	fs.IntVar(&f.opts.Nodes, "nodes", 1, "number of kwok nodes")
	fs.IntVar(&f.opts.PodsPerNode, "pods-per-node", 110, "pod capacity of each node")
	fs.BoolVar(&f.opts.DisableQPSLimits, "disable-qps-limits", false, "lift the client and apiserver rate limits, for scale tests")
	fs.DurationVar(&f.opts.NodeMonitorGracePeriod, "node-monitor-grace-period", 40*time.Second, "how long a node may miss heartbeats before it is NotReady")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "also write the kubeconfig to this path (default: only in the cluster's directory)")
	fs.BoolVar(&f.crashloop, "crashloop-stage", false, "containers whose image ends in :bad crash-loop")
	fs.Var(&f.stageFiles, "stage-file", "a file of extra kwok Stage documents (repeatable)")
	fs.Var(&f.crdPaths, "crds", "a file or directory of CustomResourceDefinitions to install (repeatable)")
	fs.Var(&f.samplePaths, "apply", "a file or directory of manifests to server-side apply after the CRDs (repeatable; run: default config/samples)")
	fs.BoolVar(&f.verbose, "v", false, "copy the components' logs to stderr")
	fs.BoolVar(&f.demo, "demo", defaultDemo, "serve the demo: metrics.k8s.io, a load exporter and Prometheus, driven by ConfigMap homeostat-demo/demo-load (run: default true; never against KUBECONFIG's cluster)")
	fs.StringVar(&f.prometheus, "prometheus-address", demo.DefaultPrometheusAddress, "where the demo's Prometheus listens; another address than the default is written into the applied samples' Prometheus sensors")
}

const usageText = `usage:
  devcluster up [flags] [-- command [args...]]
      Start a local Kubernetes control plane with kwok nodes; run until interrupted,
      or until the command, run with KUBECONFIG pointing at the cluster, exits.
  devcluster run --manager <binary> [flags] [-- manager args...]
      Run the manager against KUBECONFIG's cluster if it answers, else against a local
      cluster named homeostat with the CRDs of config/crd/bases installed, the samples of
      config/samples applied and the demo serving their sensors (metrics.k8s.io, a load
      exporter, Prometheus on 127.0.0.1:9090; the load is data.rps of ConfigMap
      homeostat-demo/demo-load); either way with webhooks off (ENABLE_WEBHOOKS=false).

flags:
`

func usage(stderr io.Writer, fs *flag.FlagSet) {
	say(stderr, "%s", usageText)
	fs.SetOutput(stderr)
	fs.PrintDefaults()
}

// run runs devcluster with the arguments until it is done, ctx ends or it is interrupted
// (SIGINT, SIGTERM), and returns its exit code. The command it runs writes to stdout and
// stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "up" && args[0] != "run") {
		var f clusterFlags
		fs := flag.NewFlagSet("devcluster", flag.ContinueOnError)
		f.register(fs, "", false)
		usage(stderr, fs)
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("devcluster "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f clusterFlags
	manager := ""
	if verb == "run" {
		f.register(fs, "homeostat", true)
		fs.StringVar(&manager, "manager", "", "the manager binary (required)")
	} else {
		f.register(fs, "", false)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stderr, fs)
			return 0
		}
		say(stderr, "devcluster: %v\n", err)
		usage(stderr, fs)
		return 2
	}
	command := fs.Args()
	if verb == "run" && manager == "" {
		say(stderr, "devcluster: run needs --manager\n")
		return 2
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once; the components die with this process
	}()

	var env []string
	if verb == "run" {
		command = append([]string{manager}, command...)
		// The manager serves its webhook only with a certificate, which a local run has not:
		// webhooks off on both branches. main.go's --enable-webhooks defaults to
		// ENABLE_WEBHOOKS != "false", so an --enable-webhooks among the manager args still wins.
		env = []string{"ENABLE_WEBHOOKS=false"}
		if kubeconfigAnswers(ctx) {
			say(stderr, "devcluster: KUBECONFIG's cluster answers: running the manager against it, webhooks off (make install puts the CRDs there)\n")
			if f.demo {
				say(stderr, "devcluster: No demo there: devcluster installs nothing in your cluster. The autoscale sample's sensors read "+
					"its metrics-server and a Prometheus (see the comments of config/samples/autonomicapp_autoscale.yaml)\n")
			}
			return runCommand(ctx, command, env, stdout, stderr)
		}
		if len(f.crdPaths) == 0 {
			root, err := devcluster.RepoRoot()
			if err != nil {
				say(stderr, "devcluster: %v\n", err)
				return 1
			}
			f.crdPaths = append(f.crdPaths, filepath.Join(root, "config", "crd", "bases"))
		}
		if len(f.samplePaths) == 0 {
			root, err := devcluster.RepoRoot()
			if err != nil {
				say(stderr, "devcluster: %v\n", err)
				return 1
			}
			f.samplePaths = append(f.samplePaths, filepath.Join(root, "config", "samples"))
		}
		// The samples show healing: a Deployment whose image ends in :bad crash-loops.
		f.crashloop = true
	}
	return up(ctx, &f, command, env, stdout, stderr)
}

// up starts the cluster, and runs command against it if there is one.
func up(ctx context.Context, f *clusterFlags, command, env []string, stdout, stderr io.Writer) int {
	opts := f.opts
	if f.crashloop {
		opts.ExtraStages = append(opts.ExtraStages, devcluster.CrashLoopStage)
	}
	for _, path := range f.stageFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			say(stderr, "devcluster: %v\n", err)
			return 2
		}
		opts.ExtraStages = append(opts.ExtraStages, string(data))
	}
	if f.verbose {
		opts.Log = stderr
	}
	opts.Logger = funcr.New(func(_, line string) { say(stderr, "devcluster: %s\n", line) }, funcr.Options{})
	prometheus := ""
	if f.demo {
		// Before anything starts: a missing Prometheus or a taken port are the likeliest
		// failures, and the quickest to fix.
		var err error
		if prometheus, err = demo.FindPrometheus(); err == nil {
			err = demo.CheckAddress(f.prometheus)
		}
		if err != nil {
			say(stderr, "devcluster: %v\n", err)
			return 1
		}
	}

	c, err := devcluster.Start(ctx, opts)
	if err != nil {
		say(stderr, "devcluster: %v\n", err)
		return 1
	}
	defer func() {
		if err := c.Stop(); err != nil {
			say(stderr, "devcluster: stopping: %v\n", err)
		}
	}()
	if len(f.crdPaths) > 0 {
		if err := c.InstallCRDs(ctx, f.crdPaths...); err != nil {
			say(stderr, "devcluster: %v\n", err)
			return 1
		}
	}
	samples, err := devcluster.ReadManifests(f.samplePaths...)
	if err != nil {
		say(stderr, "devcluster: %v\n", err)
		return 1
	}
	if f.demo {
		if moved := demo.PointSamplesAt(samples, f.prometheus); len(moved) > 0 {
			say(stderr, "devcluster: Pointed the Prometheus sensors %s at %s\n", strings.Join(moved, ", "), demo.PrometheusURL(f.prometheus))
		}
	}
	if len(samples) > 0 {
		if err := devcluster.ApplyObjects(ctx, c.RESTConfig(), samples); err != nil {
			say(stderr, "devcluster: %v\n", err)
			return 1
		}
		say(stderr, "devcluster: Applied %s\n", strings.Join(f.samplePaths, ", "))
	}
	if f.demo {
		metrics, why := demo.ManagerMetrics(command)
		if why != "" && len(command) > 0 {
			say(stderr, "devcluster: Prometheus does not scrape the manager: %s\n", why)
		}
		d, err := demo.Start(ctx, c, demo.Options{Prometheus: prometheus, PrometheusAddress: f.prometheus,
			ManagerMetrics: metrics, Samples: samples, Logger: opts.Logger})
		if err != nil {
			say(stderr, "devcluster: %v\n", err)
			return 1
		}
		defer d.Stop(context.WithoutCancel(ctx))
		say(stderr, "devcluster: Demo load: %d requests a second on the api Deployment; Prometheus at %s. Change the load with\n"+
			"devcluster:   kubectl -n %s patch configmap %s --type merge -p '{\"data\":{\"%s\":\"900\"}}'\n",
			demo.DefaultRPS, d.PrometheusURL(), demo.Namespace, demo.LoadConfigMap, demo.RPSKey)
	}
	path := c.Kubeconfig()
	if f.kubeconfig != "" {
		if err := c.WriteKubeconfig(f.kubeconfig); err != nil {
			say(stderr, "devcluster: %v\n", err)
			return 1
		}
		path = f.kubeconfig
	}
	say(stdout, "export KUBECONFIG=%s\n", path)
	say(stderr, "devcluster: In another terminal: export KUBECONFIG=%s; kubectl get aapp -A\n", path)

	if len(command) == 0 {
		say(stderr, "devcluster: Running; press Ctrl-C to stop\n")
		<-ctx.Done()
		return 0
	}
	return runCommand(ctx, command, append(env, "KUBECONFIG="+path), stdout, stderr)
}

// runCommand runs command with the extra environment in its own process group, writing to
// stdout and stderr, and returns its exit code. When ctx ends, the command gets SIGTERM,
// then SIGKILL 10 s later.
func runCommand(ctx context.Context, command, env []string, stdout, stderr io.Writer) int {
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Env = append(os.Environ(), env...) // later entries win
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := devcluster.StartProcess(cmd); err != nil {
		say(stderr, "devcluster: %v\n", err)
		return 1
	}
	err := cmd.Wait()
	if ctx.Err() != nil {
		return 0 // interrupted: the command was stopped on purpose
	}
	if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
		say(stderr, "devcluster: %s: %v\n", command[0], err)
		return max(exit.ExitCode(), 1)
	}
	if err != nil {
		say(stderr, "devcluster: %v\n", err)
		return 1
	}
	return 0
}

// kubeconfigAnswers reports whether the cluster of the user's kubeconfig (KUBECONFIG or
// ~/.kube/config) is ready within a few seconds.
func kubeconfigAnswers(ctx context.Context) bool {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return false
	}
	cfg.Timeout = 3 * time.Second
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false
	}
	_, err = client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err == nil
}
