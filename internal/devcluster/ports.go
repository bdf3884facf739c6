package devcluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// freePorts returns n distinct TCP ports that are free on 127.0.0.1.
//
// It prefers ports below the kernel's ephemeral range: the kernel never hands those out for
// outgoing connections or for a bind to port 0, so between this check and the component's
// bind only another explicit choice can take one. A start that loses that race anyway is
// retried with new ports (see errPortInUse).
func freePorts(n int) ([]int, error) {
	low, high := 20000, ephemeralLow()
	ports := make([]int, 0, n)
	seen := map[int]bool{}
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		p := 0
		if high-low >= 1000 {
			p = low + rand.IntN(high-low)
		}
		if seen[p] && p != 0 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		p = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if seen[p] {
			continue
		}
		seen[p] = true
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("found only %d of %d free ports on 127.0.0.1", len(ports), n)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 32768
	}
	v, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return v
}
