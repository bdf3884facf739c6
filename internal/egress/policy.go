package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults of the admin's limits.
const (
	// DefaultMaxResponseBytes is how much of a response body is read before the request
	// fails: 1 MiB, far above a Prometheus answer of one sample or a health check.
	DefaultMaxResponseBytes int64 = 1 << 20
	// DefaultMaxTimeout is the longest a request may take, whatever its owner asks for.
	DefaultMaxTimeout = 30 * time.Second
)

// The manager's flags that set the policy, as messages name them.
const (
	FlagAllowCIDRs       = "--egress-allow-cidrs"
	FlagDenyCIDRs        = "--egress-deny-cidrs"
	FlagMaxResponseBytes = "--egress-max-response-bytes"
	FlagMaxTimeout       = "--egress-max-timeout"
)

// Listener is one of the manager's own listen addresses, which no request may reach.
type Listener struct {
	// Name says what listens, for messages: "metrics", "health probe".
	Name string
	// Flag is the flag that sets it, for messages: "--metrics-bind-address".
	Flag string
	// Address is the flag's value: "host:port" or ":port". Empty, "0" or port 0 mean
	// there is no listener (a port 0 is chosen by the kernel and cannot be known here).
	Address string
}

// Config is what the admin set, and what the manager knows of itself.
type Config struct {
	// Allow are the CIDRs of --egress-allow-cidrs: they allow addresses of the built-in
	// deny list, and nothing more.
	Allow []netip.Prefix
	// Deny are the CIDRs of --egress-deny-cidrs: always refused.
	Deny []netip.Prefix
	// APIServers are the API server's addresses as URLs or host[:port] (rest.Config.Host,
	// the kubernetes Service's ClusterIP and port). A host name is resolved once, in New.
	APIServers []string
	// Listeners are the manager's own listen addresses.
	Listeners []Listener
	// MaxResponseBytes bounds a response body; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// MaxTimeout caps every request's timeout; 0 means DefaultMaxTimeout.
	MaxTimeout time.Duration
	// Resolver resolves host names, in New and when a request dials. Default
	// net.DefaultResolver.
	Resolver *net.Resolver
	// LocalAddrs are this host's addresses, where a listener on the unspecified address
	// (":8081") is reachable besides loopback. Nil means the interfaces' addresses.
	LocalAddrs []netip.Addr
}

// Policy decides which addresses a request may dial, and builds the client that obeys
// it. It is immutable and safe for concurrent use.
type Policy struct {
	deny, allow []netip.Prefix
	// fixed are the addresses no flag opens: the API server and the manager's listeners.
	fixed      []endpoint
	maxBody    int64
	maxTimeout time.Duration
	resolver   *net.Resolver
}

// endpoint is a port on a set of addresses, and what it is, for messages.
type endpoint struct {
	nets []netip.Prefix
	port uint16
	what string
}

// builtin is one range of the built-in deny list.
type builtin struct {
	prefix netip.Prefix
	what   string
}

// builtins is the deny list that --egress-allow-cidrs can open: addresses a tenant's
// request has no business reaching from the manager's network namespace.
var builtins = []builtin{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("::1/128"), "the loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address, where cloud metadata services answer"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	// Metadata services outside the ranges above: AWS over IPv6, Alibaba Cloud.
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata address"},
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata address"},
}

// unspecified are the addresses through which a connection reaches any local listener,
// and loopback the ranges that reach a listener on every address.
var (
	unspecified = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32"), netip.MustParsePrefix("::/128")}
	loopback    = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
)

// Default is the policy with the built-in rules and limits alone: it knows neither the
// API server nor the manager's listeners. It is for callers given no policy.
func Default() *Policy {
	return &Policy{maxBody: DefaultMaxResponseBytes, maxTimeout: DefaultMaxTimeout, resolver: net.DefaultResolver}
}

// New builds the policy: it resolves the API server's and the listeners' host names,
// once, and reads the interfaces' addresses when LocalAddrs is nil.
func New(ctx context.Context, cfg Config) (*Policy, error) {
	p := &Policy{
		deny: normalize(cfg.Deny), allow: normalize(cfg.Allow),
		maxBody: cfg.MaxResponseBytes, maxTimeout: cfg.MaxTimeout, resolver: cfg.Resolver,
	}
	switch {
	case p.maxBody < 0:
		return nil, fmt.Errorf("%s must not be negative, not %d", FlagMaxResponseBytes, p.maxBody)
	case p.maxBody == 0:
		p.maxBody = DefaultMaxResponseBytes
	}
	switch {
	case p.maxTimeout < 0:
		return nil, fmt.Errorf("%s must not be negative, not %s", FlagMaxTimeout, p.maxTimeout)
	case p.maxTimeout == 0:
		p.maxTimeout = DefaultMaxTimeout
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	for _, s := range cfg.APIServers {
		host, port, err := apiServerHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("the API server address %q: %w", s, err)
		}
		addrs, err := p.resolve(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("resolving the API server %s: %w", host, err)
		}
		p.fixed = append(p.fixed, endpoint{nets: hosts(addrs), port: port, what: "the Kubernetes API server"})
	}
	local := cfg.LocalAddrs
	for _, l := range cfg.Listeners {
		if l.Address == "" || l.Address == "0" {
			continue
		}
		host, portText, err := net.SplitHostPort(l.Address)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", l.Flag, l.Address, err)
		}
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%s %q: the port is not a number from 0 to 65535", l.Flag, l.Address)
		}
		if port == 0 {
			continue
		}
		// The unspecified address reaches any local listener.
		nets := slices.Clone(unspecified)
		if a, err := netip.ParseAddr(host); host == "" || (err == nil && a.IsUnspecified()) {
			// A listener on every address: loopback and the interfaces' addresses reach it.
			if local == nil {
				if local, err = interfaceAddrs(); err != nil {
					return nil, err
				}
			}
			nets = append(nets, loopback...)
			nets = append(nets, hosts(local)...)
		} else {
			addrs, err := p.resolve(ctx, host)
			if err != nil {
				return nil, fmt.Errorf("resolving %s %q: %w", l.Flag, l.Address, err)
			}
			nets = append(nets, hosts(addrs)...)
		}
		what := fmt.Sprintf("the manager's own %s listener (%s)", l.Name, l.Flag)
		p.fixed = append(p.fixed, endpoint{nets: nets, port: uint16(port), what: what})
	}
	return p, nil
}

// MaxResponseBytes is the most of a response body the client reads.
func (p *Policy) MaxResponseBytes() int64 { return p.maxBody }

// MaxTimeout is the longest a request may take.
func (p *Policy) MaxTimeout() time.Duration { return p.maxTimeout }

// Cap is the timeout a request gets when its owner asks for asked: asked, at most
// MaxTimeout. capped says the maximum cut it.
func (p *Policy) Cap(asked time.Duration) (d time.Duration, capped bool) {
	if asked > p.maxTimeout {
		return p.maxTimeout, true
	}
	return asked, false
}

// CapNote says, for a message, that the policy cuts a timeout asked for, or is "" when
// it does not.
func (p *Policy) CapNote(asked time.Duration) string {
	if _, capped := p.Cap(asked); !capped {
		return ""
	}
	return fmt.Sprintf("the timeout asked for, %s, is capped at %s by %s", asked, p.maxTimeout, FlagMaxTimeout)
}

// RefusedError is a connection the policy refused. Its message names the address, the
// rule that refused it, and what would allow it.
type RefusedError struct {
	// Addr is the resolved address that was to be dialled.
	Addr netip.AddrPort
	// Rule says which rule refused it.
	Rule string
	// Allow says which flag would allow it, or that none would.
	Allow string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the egress policy refused %s: %s; %s", e.Addr, e.Rule, e.Allow)
}

// Check decides whether a connection to addr may be made: nil, or a *RefusedError. It is
// a pure function of the address and the policy; it never dials.
func (p *Policy) Check(addr netip.AddrPort) error {
	if !addr.IsValid() {
		return &RefusedError{Addr: addr, Rule: "it is not an IP address and port", Allow: "no flag allows it"}
	}
	// An IPv4 address in IPv6 form reaches the IPv4 address; a zone does not change
	// which ranges it is in.
	a := addr.Addr().Unmap().WithZone("")
	for _, d := range p.deny {
		if d.Contains(a) {
			return &RefusedError{Addr: addr, Rule: fmt.Sprintf("it is in %s (%s)", FlagDenyCIDRs, d),
				Allow: fmt.Sprintf("only removing %s from %s allows it", d, FlagDenyCIDRs)}
		}
	}
	for _, e := range p.fixed {
		if e.port == addr.Port() && contains(e.nets, a) {
			return &RefusedError{Addr: addr, Rule: "it is " + e.what, Allow: "no flag allows it"}
		}
	}
	for _, al := range p.allow {
		if al.Contains(a) {
			return nil
		}
	}
	for _, b := range builtins {
		if b.prefix.Contains(a) {
			return &RefusedError{Addr: addr, Rule: fmt.Sprintf("it is %s (%s), denied by default", b.what, b.prefix),
				Allow: fmt.Sprintf("%s=%s would allow it", FlagAllowCIDRs, b.prefix)}
		}
	}
	return nil
}

// Control is the net.Dialer hook that checks the address a connection is about to be
// made to, after name resolution and before connect.
func (p *Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &RefusedError{Rule: fmt.Sprintf("%s address %q is not an IP address and port", network, address),
			Allow: "no flag allows it"}
	}
	return p.Check(ap)
}

// ParseCIDRs parses a flag's comma-separated CIDRs; a bare address is a single host.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", f)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pf, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR: %w", f, err)
		}
		out = append(out, pf)
	}
	return normalize(out), nil
}

// normalize masks each prefix and writes an IPv4-mapped IPv6 prefix as IPv4, the form
// Check compares addresses in.
func normalize(in []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(in))
	for _, pf := range in {
		a := pf.Addr().WithZone("")
		if a.Is4In6() && pf.Bits() >= 96 {
			pf = netip.PrefixFrom(a.Unmap(), pf.Bits()-96)
		} else {
			pf = netip.PrefixFrom(a, pf.Bits())
		}
		out = append(out, pf.Masked())
	}
	return out
}

func contains(nets []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(nets, func(n netip.Prefix) bool { return n.Contains(a) })
}

// hosts are the single-address prefixes of addrs, in the form Check compares.
func hosts(addrs []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

// resolve is host's addresses: the address itself, or what the resolver says.
func (p *Policy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	addrs, err := p.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, errors.New("no address")
	}
	return addrs, nil
}

// apiServerHostPort is the host and port of rest.Config.Host, which is a URL or
// host[:port]; the port defaults from the scheme (https without one).
func apiServerHostPort(s string) (string, uint16, error) {
	port := "443"
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", 0, err
		}
		if u.Scheme == "http" {
			port = "80"
		}
		s = u.Host
	}
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		host, p = strings.Trim(s, "[]"), port
	}
	if host == "" {
		return "", 0, errors.New("no host")
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("the port %q is not a number from 0 to 65535", p)
	}
	return host, uint16(n), nil
}

// interfaceAddrs are the addresses of this host's interfaces.
func interfaceAddrs() ([]netip.Addr, error) {
	ifs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("reading the interfaces' addresses: %w", err)
	}
	var out []netip.Addr
	for _, ia := range ifs {
		if n, ok := ia.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	return out, nil
}
