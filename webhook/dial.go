package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// errPrivateAddress is what a delivery records when its URL resolves to an
// address that is not on the public internet.
var errPrivateAddress = errors.New("destination address not allowed: it is in a special-purpose range such as loopback, private, link-local, NAT64 or documentation (set MARGEN_WEBHOOK_ALLOW_PRIVATE=true to allow private destinations)")

// guardian holds the ranges refused: every prefix of the IANA IPv4 and IPv6
// special-purpose address registries, and every IPv6 address outside the
// global unicast range 2000::/3, which takes in the forms that embed an IPv4
// address (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, NAT64
// 64:ff9b::/96 and 64:ff9b:1::/48); 6to4 (2002::/16) and Teredo (2001::/32)
// are refused as special-purpose prefixes. code.dny.dev/ssrf generates its
// tables from the IANA registries. Any port is allowed: a receiver may
// listen on 8443.
var guardian = ssrf.New(ssrf.WithAnyPort())

// publicOnly refuses connections to addresses that are not on the public
// internet. It runs after name resolution, for the address actually dialled,
// so a name that resolves (or rebinds) to an internal address is refused
// too: a webhook URL must not become a way to reach the server's own
// network (server-side request forgery).
func publicOnly(network, address string, _ syscall.RawConn) error {
	err := guardian.Safe(network, address, nil)
	if errors.Is(err, ssrf.ErrProhibitedIP) {
		return fmt.Errorf("%w: %v", errPrivateAddress, err)
	}
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	return nil
}

// newClient is the default delivery client: a timeout, no redirects, and
// (unless allowPrivate) connections to public addresses only.
func newClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		dialer.Control = publicOnly
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dialer.DialContext
	tr.Proxy = nil // a proxy would dial for us and bypass the check
	return &http.Client{
		Timeout:       timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
