package devcluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the credentials of one cluster, made fresh at every start: a CA, serving
// certificates for the apiserver and for the controller manager and scheduler, a client
// certificate for every user, the service-account signing key pair, and the aggregation
// layer's own CA with the front proxy's client certificate.
//
// The front proxy (the apiserver proxying a request to an aggregated API server such as
// metrics.k8s.io) has a CA of its own, as kubeadm sets it up: an aggregated server trusts
// that CA to assert any user in X-Remote-User, so no certificate of the cluster CA, which
// every user has, may pass for the front proxy, and the front proxy's certificate is no
// user of the cluster.
type pki struct {
	dir   string
	ca    keyPair
	users map[string]keyPair // by user name, see clientUsers
}

type keyPair struct {
	certPEM, keyPEM []byte
}

// user is an identity that gets a client certificate.
type user struct {
	name   string // the certificate's common name: the Kubernetes user
	groups []string
}

// clientUsers are the identities the cluster's clients authenticate as. The scheduler
// uses the name the apiserver's bootstrap RBAC policy binds. The person at the keyboard,
// the kwok controller and the controller manager, which runs all its controllers under
// its own credential, are cluster admins.
var clientUsers = []user{
	{name: "admin", groups: []string{"system:masters"}},
	{name: "system:kube-controller-manager", groups: []string{"system:masters"}},
	{name: "system:kube-scheduler"},
	{name: "kwok-controller", groups: []string{"system:masters"}},
}

const (
	caFile             = "ca.crt"
	apiserverCertFile  = "apiserver.crt"
	apiserverKeyFile   = "apiserver.key"
	componentsCertFile = "components.crt" // the controller manager's and scheduler's serving certificate
	componentsKeyFile  = "components.key"
	serviceAccountPriv = "sa.key"
	serviceAccountPub  = "sa.pub"
	frontProxyCAFile   = "front-proxy-ca.crt"
	frontProxyUser     = "front-proxy-client" // the common name of the front proxy's client certificate
	frontProxyCertFile = "front-proxy-client.crt"
	frontProxyKeyFile  = "front-proxy-client.key"
)

// serviceIP is the first address of the service range, the ClusterIP of the `kubernetes`
// Service, which the apiserver's serving certificate must name.
var serviceIP = net.IPv4(10, 96, 0, 1)

// newPKI creates the credentials and writes them to dir.
func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now()
	ca, err := newCA("homeostat-devcluster-ca", now)
	if err != nil {
		return nil, err
	}
	frontProxyCA, err := newCA("homeostat-devcluster-front-proxy-ca", now)
	if err != nil {
		return nil, err
	}
	p := &pki{dir: dir, ca: ca.pair, users: map[string]keyPair{}}
	issue := func(tmpl *x509.Certificate) (keyPair, error) { return ca.issue(tmpl, now) }

	serving, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, serviceIP},
	})
	if err != nil {
		return nil, err
	}
	components, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-components"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	})
	if err != nil {
		return nil, err
	}
	frontProxy, err := frontProxyCA.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: frontProxyUser},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, now)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		caFile:             p.ca.certPEM,
		apiserverCertFile:  serving.certPEM,
		apiserverKeyFile:   serving.keyPEM,
		componentsCertFile: components.certPEM,
		componentsKeyFile:  components.keyPEM,
		frontProxyCAFile:   frontProxyCA.pair.certPEM,
		frontProxyCertFile: frontProxy.certPEM,
		frontProxyKeyFile:  frontProxy.keyPEM,
	}
	for _, u := range clientUsers {
		kp, err := issue(&x509.Certificate{
			Subject:     pkix.Name{CommonName: u.name, Organization: u.groups},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return nil, err
		}
		p.users[u.name] = kp
		files[u.name+".crt"] = kp.certPEM
		files[u.name+".key"] = kp.keyPEM
	}

	// The service-account token signing key: RSA, which every Kubernetes version and every
	// token consumer accepts.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}
	files[serviceAccountPriv] = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)})
	files[serviceAccountPub] = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// certAuthority is a CA that issues certificates.
type certAuthority struct {
	pair keyPair
	cert *x509.Certificate
	key  crypto.Signer
}

// newCA creates a self-signed CA, valid for a year.
func newCA(name string, now time.Time) (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pair, err := encodePair(der, key)
	if err != nil {
		return nil, err
	}
	return &certAuthority{pair: pair, cert: cert, key: key}, nil
}

// issue signs a certificate of a new key for tmpl's names and usages, valid for a year.
func (ca *certAuthority) issue(tmpl *x509.Certificate, now time.Time) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.AddDate(1, 0, 0)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return keyPair{}, err
	}
	return encodePair(der, key)
}

// path returns the path of one of the files written by newPKI.
func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

func encodePair(der []byte, key crypto.Signer) (keyPair, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return keyPair{}, fmt.Errorf("encoding a private key: %w", err)
	}
	return keyPair{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}
