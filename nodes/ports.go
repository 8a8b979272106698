package nodes

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// freePort finds a free loopback port for an etcd listener (embed cannot
// take an open listener). It draws from below the kernel's ephemeral range,
// so the many outgoing connections of a running lab never take a port
// between this check and etcd's bind; a clash with another process is still
// possible and start retries with new ports.
func freePort() (string, error) {
	lo, _ := ephemeralRange()
	base := max(1024, lo-12000)
	for range 100 {
		port := base + rand.IntN(lo-base)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		return addr, ln.Close()
	}
	return "", errors.New("no free port below the ephemeral range")
}

// ephemeralRange reads the kernel's range for outgoing connections' ports.
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 60999
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	if f := strings.Fields(string(raw)); len(f) == 2 {
		a, err1 := strconv.Atoi(f[0])
		b, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil && a > 2048 {
			return a, b
		}
	}
	return lo, hi
}

// pickPorts chooses new ports for every listener of a region.
func (r *region) pickPorts() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range []*string{&r.memberPeer, &r.memberClient, &r.replicaPeer, &r.replicaClient} {
		var err error
		if *p, err = freePort(); err != nil {
			return fmt.Errorf("nodes: ports: %w", err)
		}
	}
	return nil
}

// movePorts moves the listeners of one server (member or replica) to new
// ports. The addresses its data knows it by stay: a member's peer proxy
// (when bypassing the fabric its peer port cannot move) and the replica's
// advertised peer URL (a single member never dials it).
func (r *region) movePorts(member bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ports := []*string{&r.replicaPeer, &r.replicaClient}
	if member {
		ports = []*string{&r.memberClient}
		if !r.bypass {
			ports = append(ports, &r.memberPeer)
		}
	}
	for _, p := range ports {
		var err error
		if *p, err = freePort(); err != nil {
			return fmt.Errorf("nodes: ports: %w", err)
		}
	}
	return nil
}

// listenLow opens a listener on a free loopback port below the ephemeral
// range (see freePort), for an address that must stay the same when the
// lab starts again on its data.
func listenLow() (net.Listener, error) {
	var last error
	for range 10 {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln, nil
		}
		last = err
	}
	return nil, last
}

// addrInUse reports a listener that could not bind its port.
func addrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// repoint moves everything that talks to a region's servers to their
// current ports: the peer proxy in front of its member, the clients of its
