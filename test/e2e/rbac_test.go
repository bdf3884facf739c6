package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// The manager in this suite runs as the ServiceAccount of config/default, with exactly
// the RBAC that config/rbac grants (role.yaml is generated from the controllers'
// +kubebuilder:rbac markers): a permission an effector needs and the markers lack fails
// its spec, and AfterSuite fails on any "forbidden" in the manager's log.

const (
	managerNamespace = "homeostat-system"
	managerSA        = "homeostat-controller-manager"
	// managerUser is the manager's user name as the API server sees it.
	managerUser = "system:serviceaccount:" + managerNamespace + ":" + managerSA
)

// rbacKinds are the kinds of config/default the manager's identity is made of; the rest
// (CRDs, installed already, the Deployment, the metrics Service) is not applied here.
var rbacKinds = map[string]bool{
	"Namespace": true, "ServiceAccount": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"Role": true, "RoleBinding": true,
}

// installManagerIdentity renders config/default with kubectl kustomize, creates its
// namespace, ServiceAccount and RBAC, and writes a kubeconfig that authenticates as the
// ServiceAccount with a token from the TokenRequest API. It returns the kubeconfig's path.
func installManagerIdentity(ctx context.Context, dir string) (string, error) {
	out, err := exec.Command("kubectl", "kustomize", filepath.Join(repoRoot, "config", "default")).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("rendering config/default (kubectl is built by `bash hack/tools.sh kubernetes`): %w", err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	applied := 0
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("decoding config/default: %w", err)
		}
		if len(u.Object) == 0 || !rbacKinds[u.GetKind()] {
			continue
		}
		if err := k8s.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("creating %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		applied++
	}
	if applied < 5 {
		return "", fmt.Errorf("config/default rendered only %d RBAC objects", applied)
	}
	return serviceAccountKubeconfig(ctx, managerNamespace, managerSA, filepath.Join(dir, "manager.kubeconfig"))
}

// serviceAccountKubeconfig writes to path a copy of the suite's kubeconfig that
// authenticates as the ServiceAccount namespace/name instead, with a token from the
// TokenRequest API, and returns path.
func serviceAccountKubeconfig(ctx context.Context, namespace, name, path string) (string, error) {
	tok, err := clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(24 * 3600))}},
		metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for system:serviceaccount:%s:%s: %w", namespace, name, err)
	}
	cfg, err := clientcmd.LoadFromFile(kubeconfigPath)
	if err != nil {
		return "", err
	}
	cur := cfg.Contexts[cfg.CurrentContext]
	if cur == nil {
		return "", fmt.Errorf("kubeconfig %s has no current context", kubeconfigPath)
	}
	user := cfg.AuthInfos[cur.AuthInfo]
	if user == nil {
		return "", fmt.Errorf("kubeconfig %s has no user %q", kubeconfigPath, cur.AuthInfo)
	}
	user.ClientCertificate, user.ClientKey, user.ClientCertificateData, user.ClientKeyData = "", "", nil, nil
	user.Token = tok.Status.Token
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", err
	}
	return path, nil
}

// forbiddenInLog returns the lines of a manager log where the API server refused the
// manager's identity something.
func forbiddenInLog(path string) []string { return forbiddenInLogFor(path, managerUser) }

// forbiddenInLogFor returns the lines of a manager log where the API server refused user
// something.
func forbiddenInLogFor(path, user string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "forbidden") && strings.Contains(l, user) {
			out = append(out, l)
		}
	}
	return out
}
