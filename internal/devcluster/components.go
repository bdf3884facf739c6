package devcluster

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// The command lines of the components. Every listener is on 127.0.0.1; every credential is
// in the cluster's pki directory; nothing reaches beyond the machine.

// unlimitedQPS and unlimitedBurst are the client rate limits with DisableQPSLimits, as
// kwokctl's --disable-qps-limits sets them.
const (
	unlimitedQPS   = 5000
	unlimitedBurst = 10000
)

// alwaysAllowPaths are served without authorization by the controller manager and the
// scheduler, so that health checks and metric scrapes need no credentials.
const alwaysAllowPaths = "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics"

func loopbackURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

func etcdArgs(dir string, p clusterPorts) []string {
	peer := loopbackURL(p.etcdPeer)
	return []string{
		"--name=devcluster",
		"--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + loopbackURL(p.etcdClient),
		"--advertise-client-urls=" + loopbackURL(p.etcdClient),
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=devcluster=" + peer,
		"--initial-cluster-state=new",
		"--initial-cluster-token=homeostat-devcluster",
		// The data is thrown away at the next start: durability buys nothing here and
		// fsync is the slowest part of a write on a small machine.
		"--unsafe-no-fsync=true",
		"--auto-compaction-mode=periodic",
		"--auto-compaction-retention=1h",
		"--quota-backend-bytes=" + strconv.FormatInt(8<<30, 10),
		"--log-level=warn",
	}
}

func apiserverArgs(dir string, p clusterPorts, pk *pki, disableQPSLimits bool) []string {
	args := []string{
		"--etcd-servers=" + loopbackURL(p.etcdClient),
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.apiserver),
		// The apiserver would otherwise advertise the address of the host's default route
		// (and fail without one). Nothing connects to the advertised address, and a loopback
		// address is not a valid endpoint of the `kubernetes` Service, so that Service gets
		// no endpoints.
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--tls-cert-file=" + pk.path(apiserverCertFile),
		"--tls-private-key-file=" + pk.path(apiserverKeyFile),
		"--client-ca-file=" + pk.path(caFile),
		"--service-account-key-file=" + pk.path(serviceAccountPub),
		"--service-account-signing-key-file=" + pk.path(serviceAccountPriv),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC",
		// The default admission plugins are on; NodeRestriction is what a real cluster adds.
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		// The aggregation layer, so that an APIService (the metrics.k8s.io of
		// internal/devcluster/metricsapi, say) can be added. The apiserver proxies to it with
		// the front proxy's certificate, of a CA of its own, and publishes that CA and
		// these headers in kube-system/extension-apiserver-authentication.
		"--requestheader-client-ca-file=" + pk.path(frontProxyCAFile),
		"--requestheader-allowed-names=" + frontProxyUser,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + pk.path(frontProxyCertFile),
		"--proxy-client-key-file=" + pk.path(frontProxyKeyFile),
		"--profiling=false",
	}
	if disableQPSLimits {
		args = append(args,
			"--max-requests-inflight=0",
			"--max-mutating-requests-inflight=0",
			"--enable-priority-and-fairness=false",
		)
	}
	return args
}

// controllerManagerControllers are the controllers that are on by default: deployment,
// replicaset, statefulset, job, garbage collector, namespace, service account and token,
// node lifecycle, endpoints, endpoint slices, disruption and the rest. The cloud
// controllers are no longer part of kube-controller-manager.
var controllerManagerControllers = []string{"*"}

func controllerManagerArgs(dir string, p clusterPorts, pk *pki, kubeconfig string, opts Options) []string {
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		alwaysAllowPaths,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.controllerManager),
		"--tls-cert-file=" + pk.path(componentsCertFile),
		"--tls-private-key-file=" + pk.path(componentsKeyFile),
		"--leader-elect=false",
		"--controllers=" + strings.Join(controllerManagerControllers, ","),
		"--root-ca-file=" + pk.path(caFile),
		"--service-account-private-key-file=" + pk.path(serviceAccountPriv),
		// Every controller uses the controller manager's own credential (a cluster admin,
		// see clientUsers): a service-account credential per controller would add about
		// 5 s to every start, and the controllers' RBAC is not what Homeostat tests.
		"--use-service-account-credentials=false",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--node-monitor-grace-period=" + opts.NodeMonitorGracePeriod.String(),
		"--profiling=false",
	}
	if opts.DisableQPSLimits {
		args = append(args,
			"--kube-api-qps="+strconv.Itoa(unlimitedQPS),
			"--kube-api-burst="+strconv.Itoa(unlimitedBurst),
		)
	}
	return args
}

func schedulerArgs(p clusterPorts, pk *pki, kubeconfig, config string) []string {
	return []string{
		"--config=" + config,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		alwaysAllowPaths,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.scheduler),
		"--tls-cert-file=" + pk.path(componentsCertFile),
		"--tls-private-key-file=" + pk.path(componentsKeyFile),
	}
}

// schedulerConfig is the scheduler's configuration file: its client and no leader election.
func schedulerConfig(kubeconfig string, disableQPSLimits bool) string {
	conn := fmt.Sprintf("  kubeconfig: %q\n", kubeconfig)
	if disableQPSLimits {
		conn += fmt.Sprintf("  qps: %d\n  burst: %d\n", unlimitedQPS, unlimitedBurst)
	}
	return "apiVersion: kubescheduler.config.k8s.io/v1\n" +
		"kind: KubeSchedulerConfiguration\n" +
		"clientConnection:\n" + conn +
		"leaderElection:\n  leaderElect: false\n"
}

func kwokArgs(kubeconfig, config string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--config=" + config,
	}
}
