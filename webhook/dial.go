package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// errPrivateAddress is what a delivery records when its URL resolves to an
// address inside the server's own network.
var errPrivateAddress = errors.New("destination address not allowed: it is loopback, private or link-local (set MARGEN_WEBHOOK_ALLOW_PRIVATE=true to allow it)")

// publicOnly refuses connections to addresses that are not on the public
// internet. It runs after name resolution, for the address actually dialled,
// so a name that resolves (or rebinds) to an internal address is refused
// too: a webhook URL must not become a way to reach the server's own
// network (server-side request forgery).
func publicOnly(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: bad address %q: %w", address, err)
	}
	ip := ap.Addr().Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(ip) { // carrier-grade NAT
		return errPrivateAddress
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
