package devcluster

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodeheartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	"sigs.k8s.io/yaml"
)

// CrashLoopStage holds kwok stages that make every container whose image ends in ":bad"
// crash: with restartPolicy Always or OnFailure it waits in CrashLoopBackOff, not ready,
// its restartCount rising every 1-2 s; with Never the pod fails. Other images run as
// usual. Pass it in Options.ExtraStages.
//
//go:embed stages/crashloop.yaml
var CrashLoopStage string

// defaultStages are the node and pod stages kwok itself uses when it is given none, taken
// from the kwok module so that they match the kwok binary: nodes become Ready and renew
// their lease, pods run, Job pods complete, deleted pods go away.
func defaultStages() []string {
	return []string{
		nodefast.DefaultNodeInit,
		nodeheartbeat.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady,
		podfast.DefaultPodComplete,
		podfast.DefaultPodDelete,
	}
}

const (
	// kwokNodeAnnotation marks the nodes kwok manages, the way kwokctl marks them.
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	kwokNodeValue      = "fake"
	// nodeLeaseDurationSeconds is the lease kwok holds for every node; it renews it every
	// quarter of this, so the controller manager's node lifecycle sees the nodes alive.
	nodeLeaseDurationSeconds = 40
)

// kwokConfig returns the kwok configuration file: its options and every stage, kwok's
// defaults first and then extra. Given a configuration with stages, kwok uses only those,
// so the defaults must be in it.
func kwokConfig(serverAddress string, extra []string) ([]byte, error) {
	conf := map[string]any{
		"apiVersion": "config.kwok.x-k8s.io/v1alpha1",
		"kind":       "KwokConfiguration",
		"options": map[string]any{
			"manageAllNodes":                    false,
			"manageNodesWithAnnotationSelector": kwokNodeAnnotation + "=" + kwokNodeValue,
			"nodeLeaseDurationSeconds":          nodeLeaseDurationSeconds,
			"serverAddress":                     serverAddress,
			// As kwok's own deployment (kustomize/kwok/kwok.yaml) sets them: the binary
			// does not default the lease parallelism and refuses to start without it.
			"nodeLeaseParallelism":            4,
			"podPlayStageParallelism":         4,
			"nodePlayStageParallelism":        4,
			"enablePodsOnNodeSyncStreamWatch": true,
		},
	}
	head, err := yaml.Marshal(conf)
	if err != nil {
		return nil, err
	}
	docs := []string{string(head)}
	names := map[string]bool{}
	for i, s := range append(defaultStages(), extra...) {
		stages, err := splitStages(s)
		if err != nil {
			return nil, fmt.Errorf("stage document %d: %w", i, err)
		}
		for _, st := range stages {
			if names[st.name] {
				return nil, fmt.Errorf("two stages are named %q", st.name)
			}
			names[st.name] = true
			docs = append(docs, st.yaml)
		}
	}
	return []byte(strings.Join(docs, "\n---\n")), nil
}

type stageDoc struct {
	name, yaml string
}

// splitStages splits a YAML stream into its kwok Stage documents and checks that each is one.
func splitStages(stream string) ([]stageDoc, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var out []stageDoc
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, err
		}
		if head.APIVersion == "" && head.Kind == "" {
			continue // an empty document or only comments
		}
		if head.APIVersion != "kwok.x-k8s.io/v1alpha1" || head.Kind != "Stage" {
			return nil, fmt.Errorf("want a kwok.x-k8s.io/v1alpha1 Stage, got %s %s", head.APIVersion, head.Kind)
		}
		if head.Metadata.Name == "" {
			return nil, errors.New("a Stage has no metadata.name")
		}
		out = append(out, stageDoc{name: head.Metadata.Name, yaml: strings.TrimSpace(string(doc))})
	}
	return out, nil
}

// Node shape. The addresses are fake and nothing may ever connect to them: node i has the
// InternalIP 10.64.0.0+i+1 and a pod range of its own in 10.128.0.0/9, big enough for its
// pods. (192.0.2.0/24, kwokctl's node range, can be a real network of the host.)
var (
	nodeIPBase  = netip.MustParseAddr("10.64.0.0")
	podCIDRBase = netip.MustParseAddr("10.128.0.0")
)

// NodesFor returns how many nodes of the default capacity hold pods pods with room to
// spare: one node per 100 pods, at least one.
func NodesFor(pods int) int {
	return max(1, (pods+99)/100)
}

func nodeName(i int) string { return fmt.Sprintf("kwok-node-%d", i) }

// newNode returns the i-th fake node: managed by kwok, untainted, 32 CPUs, 256Gi of memory
// and pods pods.
func newNode(i, pods int) *corev1.Node {
	name := nodeName(i)
	cidr := podCIDR(i, pods)
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   *resource.NewQuantity(int64(pods), resource.DecimalSI),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Annotations: map[string]string{
				kwokNodeAnnotation:             kwokNodeValue,
				"node.alpha.kubernetes.io/ttl": "0",
			},
			Labels: map[string]string{
				"beta.kubernetes.io/arch":       "amd64",
				"beta.kubernetes.io/os":         "linux",
				"kubernetes.io/arch":            "amd64",
				"kubernetes.io/hostname":        name,
				"kubernetes.io/os":              "linux",
				"kubernetes.io/role":            "agent",
				"node-role.kubernetes.io/agent": "",
				"type":                          "kwok",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
		Status: corev1.NodeStatus{
			// Both address types: kwok's node-initialize stage rewrites the addresses
			// (to nothing, without --node-ip and --node-name) unless both are there.
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: addrAdd(nodeIPBase, uint32(i+1)).String()},
				{Type: corev1.NodeHostName, Address: name},
			},
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			NodeInfo:    corev1.NodeSystemInfo{Architecture: "amd64", OperatingSystem: "linux"},
		},
	}
}

// podCIDR returns the pod range of node i: the smallest power-of-two block, at least a /24,
// that holds pods addresses plus network and broadcast.
func podCIDR(i, pods int) string {
	hostBits := max(8, bits.Len(uint(pods+1)))
	prefix := netip.PrefixFrom(addrAdd(podCIDRBase, uint32(i)<<hostBits), 32-hostBits)
	return prefix.String()
}

func addrAdd(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
