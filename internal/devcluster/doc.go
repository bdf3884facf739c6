// Package devcluster runs a real, local Kubernetes control plane with fake kwok nodes: the
// one way `make run`, the e2e suites and the benchmarks get a cluster on a machine without
// Docker.
//
// Start launches etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the
// kwok controller, the pinned binaries that hack/tools.sh builds, as child processes, and
// creates the nodes. Deployments, ReplicaSets, StatefulSets, Jobs, PodDisruptionBudgets,
// garbage collection and node lifecycle work as in a real cluster; kwok plays the
// kubelets, so pods get scheduled and run without any container.
//
// What the package decides:
//
//   - The cluster is new at every Start: fresh etcd data, fresh credentials (a CA, serving
//     and client certificates, an RSA service-account key pair) and fresh loopback ports.
//   - Authentication is by client certificate and authorization is Node,RBAC with the
//     default admission plugins, so least-privilege RBAC can be tested. The kubeconfig is a
//     cluster admin (user admin, group system:masters). The scheduler runs as
//     system:kube-scheduler; the controller manager runs all its controllers under its
//     own, admin, credential (per-controller service accounts cost 5 s a start).
//   - The shape of the nodes: untainted, 32 CPUs, 256Gi, PodsPerNode pods (110), fake
//     addresses; one node per 100 pods is the rule of thumb (NodesFor).
//   - kwok gets its default node and pod stages from the kwok module, followed by
//     Options.ExtraStages such as CrashLoopStage, since kwok given any stage uses only
//     the ones it is given.
//   - No process outlives its cluster. Each component runs in its own process group with
//     SIGKILL as its parent-death signal, so it dies with the process that started it,
//     whether that stops, fails or is killed. Stop sends SIGTERM, then SIGKILL, and waits.
//     The pids are recorded in the work directory, whose lock the cluster holds; the next
//     Start there kills any recorded process that is still running as a component of that
//     directory. StartComponent holds a process of the caller's (make run's Prometheus,
//     see the demo package) to the same rules.
//
// What it never does: listen on or connect to anything but 127.0.0.1 (the addresses of
// nodes, pods and Services are fake and must never be dialled), touch ~/.kube/config or
// ~/.kwok, reuse state from an earlier run, or leave a process behind.
package devcluster
