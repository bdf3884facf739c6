package metricsapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// The objects Start creates.
const (
	// APIServiceName is the APIService of metrics.k8s.io/v1beta1, the name metrics-server
	// registers too.
	APIServiceName = Version + "." + Group
	// ServiceNamespace and ServiceName name the ExternalName Service the APIService
	// points at.
	ServiceNamespace = metav1.NamespaceSystem
	ServiceName      = "homeostat-test-metrics"
	// ManagedByLabel marks the objects Start creates, so a real metrics-server's
	// APIService is never replaced.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "homeostat-metricsapi"
)

// loopback is the only address the server listens on and the Service's external name:
// a literal address, so the aggregator dials it without looking a name up.
const loopback = "127.0.0.1"

// registerTimeout bounds the wait for the APIService to become Available.
const registerTimeout = time.Minute

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// Options say how Start serves the API.
type Options struct {
	// Window is the window every sample reports. Default DefaultWindow (15s). The HPA
	// sets aside the CPU sample of a pod that started less than 5 minutes ago until its
	// timestamp is a window past the pod's readiness.
	Window time.Duration
	// Logger receives progress messages. Default: none.
	Logger logr.Logger
}

// Start serves metrics.k8s.io/v1beta1 on 127.0.0.1 and registers it with the cluster of
// cfg, whose apiserver must run the aggregation layer (the requestheader and proxy-client
// flags, as internal/devcluster sets them). It returns once the APIService is Available
// and a list of node metrics through the apiserver succeeds. Stop undoes it.
//
// An APIService v1beta1.metrics.k8s.io that Start did not create (a real
// metrics-server's) is an error; one left by an earlier run is replaced.
func Start(ctx context.Context, cfg *rest.Config, opts Options) (*Running, error) {
	began := time.Now()
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkNotForeign(ctx, dyn); err != nil {
		return nil, err
	}
	auth, err := readFrontProxyAuth(ctx, client)
	if err != nil {
		return nil, err
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	pods, nodes := factory.Core().V1().Pods(), factory.Core().V1().Nodes()
	srv := newServer(pods.Lister(), nodes.Lister(), opts.Window, log)
	srv.auth = auth
	r := &Running{Server: srv, client: client, dyn: dyn, cfg: rest.CopyConfig(cfg), stopInformers: make(chan struct{}), log: log}
	pods.Informer()
	nodes.Informer()
	factory.Start(r.stopInformers)
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			r.stop()
			return nil, fmt.Errorf("syncing the %v informer: %w", typ, ctx.Err())
		}
	}

	cert, caPEM, err := selfSigned()
	if err != nil {
		r.stop()
		return nil, fmt.Errorf("creating the serving certificate: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		r.stop()
		return nil, err
	}
	r.port = ln.Addr().(*net.TCPAddr).Port
	r.http = &http.Server{
		Handler: srv.handler(),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    auth.cas,
			MinVersion:   tls.VersionTLS12,
		},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errorLog(log),
	}
	r.served = make(chan error, 1)
	go func() { r.served <- r.http.ServeTLS(ln, "", "") }()

	if err := r.register(ctx, caPEM); err != nil {
		_ = r.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	log.Info("Serving metrics.k8s.io", "address", r.Addr(), "apiService", APIServiceName,
		"took", time.Since(began).Round(time.Millisecond).String())
	return r, nil
}

// Running is a Server that Start serves and registered.
type Running struct {
	*Server
	client        kubernetes.Interface
	dyn           dynamic.Interface
	cfg           *rest.Config
	log           logr.Logger
	port          int
	http          *http.Server
	served        chan error
	stopInformers chan struct{}
	stopOnce      sync.Once
	stopErr       error
}

// Addr is the server's address, 127.0.0.1:<port>.
func (r *Running) Addr() string { return net.JoinHostPort(loopback, strconv.Itoa(r.port)) }

// register creates the Service and the APIService and waits until the API answers
// through the apiserver.
func (r *Running) register(ctx context.Context, caPEM []byte) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ServiceNamespace, Name: ServiceName, Labels: map[string]string{ManagedByLabel: managedBy}},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: loopback,
			Ports:        []corev1.ServicePort{{Name: "https", Port: int32(r.port), Protocol: corev1.ProtocolTCP}},
		},
	}
	err := r.client.CoreV1().Services(ServiceNamespace).Delete(ctx, ServiceName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the Service of an earlier run: %w", err)
	}
	if _, err := r.client.CoreV1().Services(ServiceNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Service %s/%s: %w", ServiceNamespace, ServiceName, err)
	}

	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata": map[string]any{
			"name":   APIServiceName,
			"labels": map[string]any{ManagedByLabel: managedBy},
		},
		"spec": map[string]any{
			"group":   Group,
			"version": Version,
			"service": map[string]any{"namespace": ServiceNamespace, "name": ServiceName, "port": int64(r.port)},
			// The aggregator checks the serving certificate against this CA (base64, as
			// []byte is in JSON) under the name <service>.<namespace>.svc, which the
			// certificate carries.
			"caBundle":             base64.StdEncoding.EncodeToString(caPEM),
			"groupPriorityMinimum": int64(100),
			"versionPriority":      int64(100),
		},
	}}
	if _, err := r.dyn.Resource(apiServiceGVR).Apply(ctx, APIServiceName, apiService,
		metav1.ApplyOptions{FieldManager: managedBy, Force: true}); err != nil {
		return fmt.Errorf("applying APIService %s: %w", APIServiceName, err)
	}

	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	var last string
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := r.servingError(); err != nil {
			return false, err
		}
		u, err := r.dyn.Resource(apiServiceGVR).Get(ctx, APIServiceName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		available, msg := availableCondition(u)
		last = "Available: " + msg
		return available, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for APIService %s to be Available: %w (%s)", APIServiceName, err, last)
	}
	mc, err := metricsclient.NewForConfig(r.cfg)
	if err != nil {
		return err
	}
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := mc.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
		}
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("listing node metrics through the apiserver: %w (%s)", err, last)
	}
	return nil
}

func (r *Running) servingError() error {
	select {
	case err := <-r.served:
		r.served <- err
		return fmt.Errorf("the server stopped: %w", err)
	default:
		return nil
	}
}

// availableCondition reads an APIService's Available condition.
func availableCondition(u *unstructured.Unstructured) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Available" {
			return m["status"] == "True", fmt.Sprintf("%v %v: %v", m["status"], m["reason"], m["message"])
		}
	}
	return false, "no condition yet"
}

// Stop unregisters the API (the APIService, then the Service), stops serving and stops
// the informers. It can be called more than once; it returns the first call's result.
func (r *Running) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		var errs []error
		err := r.dyn.Resource(apiServiceGVR).Delete(ctx, APIServiceName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting APIService %s: %w", APIServiceName, err))
		}
		err = r.client.CoreV1().Services(ServiceNamespace).Delete(ctx, ServiceName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting Service %s/%s: %w", ServiceNamespace, ServiceName, err))
		}
		if r.http != nil {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := r.http.Shutdown(sctx); err != nil {
				_ = r.http.Close()
			}
			cancel()
		}
		r.stop()
		r.stopErr = errors.Join(errs...)
		r.log.Info("Stopped serving metrics.k8s.io", "apiService", APIServiceName)
	})
	return r.stopErr
}

func (r *Running) stop() {
	select {
	case <-r.stopInformers:
	default:
		close(r.stopInformers)
	}
}

// checkNotForeign fails when an APIService of metrics.k8s.io/v1beta1 exists that Start
// did not create.
func checkNotForeign(ctx context.Context, dyn dynamic.Interface) error {
	u, err := dyn.Resource(apiServiceGVR).Get(ctx, APIServiceName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading APIService %s: %w", APIServiceName, err)
	case u.GetLabels()[ManagedByLabel] != managedBy:
		return fmt.Errorf("APIService %s exists and is not a test's (a metrics-server is installed?): refusing to replace it", APIServiceName)
	}
	return nil
}

// readFrontProxyAuth reads how the apiserver's front proxy authenticates, from the
// ConfigMap the apiserver publishes for aggregated servers.
func readFrontProxyAuth(ctx context.Context, client kubernetes.Interface) (*frontProxyAuth, error) {
	const name = "extension-apiserver-authentication"
	cm, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap kube-system/%s: %w", name, err)
	}
	caPEM := cm.Data["requestheader-client-ca-file"]
	if caPEM == "" {
		return nil, fmt.Errorf("the apiserver runs no aggregation layer: ConfigMap kube-system/%s has no requestheader-client-ca-file (start kube-apiserver with --requestheader-client-ca-file and --proxy-client-cert-file)", name)
	}
	a := &frontProxyAuth{cas: x509.NewCertPool()}
	if !a.cas.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, fmt.Errorf("ConfigMap kube-system/%s: requestheader-client-ca-file holds no certificate", name)
	}
	for key, dst := range map[string]*[]string{
		"requestheader-allowed-names":    &a.allowedNames,
		"requestheader-username-headers": &a.userHeaders,
		"requestheader-group-headers":    &a.groupHeaders,
	} {
		if v := strings.TrimSpace(cm.Data[key]); v != "" {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				return nil, fmt.Errorf("ConfigMap kube-system/%s: %s: %w", name, key, err)
			}
		}
	}
	if len(a.userHeaders) == 0 {
		a.userHeaders = []string{"X-Remote-User"}
	}
	return a, nil
}

// selfSigned makes the serving certificate: self-signed, for 127.0.0.1, localhost and
// the name the aggregator checks, <service>.<namespace>.svc. Its PEM is the APIService's
// CA bundle.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: ServiceName + "." + ServiceNamespace + ".svc"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{ServiceName + "." + ServiceNamespace + ".svc", "localhost"},
		IPAddresses:           []net.IP{net.ParseIP(loopback)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return cert, certPEM, err
}

// errorLog sends the HTTP server's own messages (TLS handshake failures) to the logger.
func errorLog(l logr.Logger) *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

type logWriter struct{ l logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.V(1).Info("HTTP server", "message", strings.TrimSpace(string(p)))
	return len(p), nil
}
