package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPublicOnly: one address in every prefix of the IANA IPv4 and IPv6
// special-purpose address registries (and the other non-public ranges) is
// refused at dial time; public addresses pass, on any port.
func TestPublicOnly(t *testing.T) {
	refused := []string{
		// The two forms of finding 8 of issue 6: 127.0.0.1 behind NAT64 and
		// as an IPv4-compatible address.
		"64:ff9b::7f00:1", "::7f00:1",
		// IPv4 special-purpose registry.
		"0.0.0.0", "0.1.2.3", // "this network", "this host"
		"10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.255.255.254",
		"169.254.169.254", "172.16.0.1", "172.31.255.254",
		"192.0.0.1", "192.0.0.2", "192.0.0.8", "192.0.0.9", "192.0.0.10", "192.0.0.170", "192.0.0.171",
		"192.0.2.1", "192.31.196.1", "192.52.193.1", "192.88.99.1", "192.168.1.10", "192.175.48.1",
		"198.18.0.1", "198.19.255.254", "198.51.100.1", "203.0.113.1", "240.0.0.1", "255.255.255.255",
		// IPv4 multicast.
		"224.0.0.1", "239.255.255.250",
		// IPv6 special-purpose registry.
		"::1", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:8.8.8.8",
		"64:ff9b::a00:1", "64:ff9b::808:808", "64:ff9b:1::1",
		"100::1", "100:0:0:1::1",
		"2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
		"2001:1::1", "2001:1::2", "2001:1::3", "2001:2::1", "2001:3::1", "2001:4:112::1",
		"2001:10::1", "2001:20::1", "2001:30::1", "2001:db8::1",
		"2002:7f00:1::1", "2002:a00:1::1", // 6to4 of 127.0.0.1 and 10.0.0.1
		"2620:4f:8000::1", "3fff::1", "5f00::1",
		"fc00::1", "fd00::1", "fe80::1", "fec0::1",
		// IPv6 multicast and other ranges outside global unicast.
		"ff02::1", "ff05::1:3", "::a00:1", "400::1",
	}
	public := []string{"8.8.8.8", "1.1.1.1", "9.9.9.9", "193.0.14.129", "100.128.0.1", "172.32.0.1",
		"2001:4860:4860::8888", "2606:4700:4700::1111", "2a00:1450:4001::1", "2001:200::1"}
	hostPort := func(ip string, port int) (string, string) {
		if strings.Contains(ip, ":") {
			return "tcp6", fmt.Sprintf("[%s]:%d", ip, port)
		}
		return "tcp4", fmt.Sprintf("%s:%d", ip, port)
	}
	for _, ip := range refused {
		network, addr := hostPort(ip, 443)
		if err := publicOnly(network, addr, nil); !errors.Is(err, errPrivateAddress) {
			t.Errorf("%s: err = %v, want refused", addr, err)
		}
	}
	for _, ip := range public {
		for _, port := range []int{443, 80, 8443} {
			network, addr := hostPort(ip, port)
			if err := publicOnly(network, addr, nil); err != nil {
				t.Errorf("%s: %v, want allowed", addr, err)
			}
		}
	}
}

func TestDefaultClientRefusesLoopback(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, err := newClient(time.Second, false).Post(srv.URL, "application/json", nil)
	if !errors.Is(err, errPrivateAddress) || hits.Load() != 0 {
		t.Fatalf("delivery to loopback: err = %v, hits = %d; want refused before connecting", err, hits.Load())
	}
	resp, err := newClient(time.Second, true).Post(srv.URL, "application/json", nil)
	if err != nil || hits.Load() != 1 {
		t.Fatalf("with AllowPrivate: %v, hits = %d", err, hits.Load())
	}
	resp.Body.Close()
}
