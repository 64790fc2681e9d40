package web

import (
	"net/http"

	qr "github.com/piglig/go-qr"
)

// QR codes of survey links and standing codes, with github.com/piglig/go-qr:
// SVG for screens and printed sheets (scales without blur), PNG for
// receipt printers that take images.

const (
	qrBorder   = 4 // modules of quiet zone, as the standard asks
	qrPNGScale = 8 // pixels per module
)

// qrSVG is the SVG of a QR code of text (error correction M: survives a
// smudge or a fold).
func qrSVG(text string) ([]byte, error) {
	c, err := qr.EncodeText(text, qr.Medium)
	if err != nil {
		return nil, err
	}
	return c.ToSVGBytes(qr.NewQrCodeImgConfig(1, qrBorder, qr.WithOptimalSVG()))
}

// qrPNG is the PNG of a QR code of text.
func qrPNG(text string) ([]byte, error) {
	c, err := qr.EncodeText(text, qr.Medium)
	if err != nil {
		return nil, err
	}
	return c.ToPNGBytes(qr.NewQrCodeImgConfig(qrPNGScale, qrBorder*qrPNGScale))
}

// writeQR answers a QR code image of text as SVG or PNG (format "svg" or
// "png"). The image holds a secret link: it is never cached.
func (s *server) writeQR(w http.ResponseWriter, r *http.Request, format, text string) {
	var b []byte
	var err error
	ctype := "image/svg+xml"
	if format == "png" {
		b, err = qrPNG(text)
		ctype = "image/png"
	} else {
		b, err = qrSVG(text)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "private, no-store")
	w.Write(b)
}
