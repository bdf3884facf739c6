package bench

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// An echo server on loopback stands for kube-apiserver.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func echoThrough(addr, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return line, err
}

func TestAPIGateRelaysRefusesWhileClosedAndReopensOnItsAddress(t *testing.T) {
	g, err := newAPIGate(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.close)
	if got, err := echoThrough(g.addr, "one"); err != nil || got != "one\n" {
		t.Fatalf("open gate: %q, %v", got, err)
	}

	// A connection open when the gate closes is cut.
	held, err := net.DialTimeout("tcp", g.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.Write([]byte("held\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(held)
	if line, err := r.ReadString('\n'); err != nil || line != "held\n" {
		t.Fatalf("held connection: %q, %v", line, err)
	}
	g.close()
	_ = held.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("a connection open when the gate closed still reads")
	}
	if _, err := echoThrough(g.addr, "two"); err == nil {
		t.Error("a closed gate relayed a new connection")
	}

	if err := g.open(); err != nil {
		t.Fatal(err)
	}
	if got, err := echoThrough(g.addr, "three"); err != nil || got != "three\n" {
		t.Fatalf("reopened gate: %q, %v", got, err)
	}
	if err := g.open(); err == nil {
		t.Error("opening an open gate succeeded")
	}
}
