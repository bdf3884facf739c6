package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// apiGate is a loopback TCP relay between the managers and kube-apiserver that the
// outage benchmark closes and opens. While it is closed a manager's connections are
// refused, as a stopped API server refuses them; the test opens it once the API server
// is back and the test has changed the world, so "the API server is ready" is one
// instant for every manager, and no manager can see the returned server before the
// changes it must notice.
type apiGate struct {
	target string // host:port of kube-apiserver
	addr   string // 127.0.0.1:port the managers dial

	mu    sync.Mutex
	ln    net.Listener // nil while closed
	conns map[net.Conn]struct{}
}

// newAPIGate opens a gate to target (host:port, a loopback address).
func newAPIGate(target string) (*apiGate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &apiGate{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	g.serve(ln)
	return g, nil
}

func (g *apiGate) serve(ln net.Listener) {
	g.mu.Lock()
	g.ln = ln
	g.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go g.relay(c)
		}
	}()
}

func (g *apiGate) relay(c net.Conn) {
	up, err := net.DialTimeout("tcp", g.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	g.mu.Lock()
	if g.ln == nil { // closed while dialing
		g.mu.Unlock()
		_, _ = c.Close(), up.Close()
		return
	}
	g.conns[c], g.conns[up] = struct{}{}, struct{}{}
	g.mu.Unlock()
	done := func() {
		_, _ = c.Close(), up.Close()
		g.mu.Lock()
		delete(g.conns, c)
		delete(g.conns, up)
		g.mu.Unlock()
	}
	go func() { _, _ = io.Copy(up, c); done() }()
	_, _ = io.Copy(c, up)
	done()
}

// close refuses new connections and cuts every open one.
func (g *apiGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		_ = g.ln.Close()
		g.ln = nil
	}
	for c := range g.conns {
		_ = c.Close()
	}
	clear(g.conns)
}

// open accepts connections again, on the same address.
func (g *apiGate) open() error {
	g.mu.Lock()
	open := g.ln != nil
	g.mu.Unlock()
	if open {
		return errors.New("the gate is already open")
	}
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		return fmt.Errorf("listening on %s again: %w", g.addr, err)
	}
	g.serve(ln)
	return nil
}

// kubeconfig writes, into dir, a copy of the kubeconfig at from whose clusters are
// reached through the gate, and returns its path. TLS is unchanged: the API server's
// certificate names 127.0.0.1, whatever the port.
func (g *apiGate) kubeconfig(from, dir string) (string, error) {
	cfg, err := clientcmd.LoadFromFile(from)
	if err != nil {
		return "", err
	}
	for name, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			return "", fmt.Errorf("cluster %s: %w", name, err)
		}
		if u.Host != g.target {
			return "", fmt.Errorf("cluster %s is at %s, the gate leads to %s", name, u.Host, g.target)
		}
		u.Host = g.addr
		c.Server = u.String()
	}
	path := filepath.Join(dir, "kubeconfig-through-gate")
	return path, clientcmd.WriteToFile(*cfg, path)
}
