package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Static files: our own (static/*.css, *.js) and the vendored ones
// (static/vendor, see scripts/vendor-assets). axe-core is not here: it is
// for tests only (testdata/vendor).
//
//go:embed static/*.css static/vendor/*.js static/vendor/*.css
var staticFS embed.FS

// asset is one static file held in memory with its gzip form.
type asset struct {
	name  string
	hash  string // first 12 hex digits of its SHA-256: part of the URL
	ctype string
	plain []byte
	gz    []byte
}

// assets are the static files by name ("app.css", "vendor/htmx.min.js").
// Their URLs carry a content hash (/static/HASH/NAME), so they are cached
// forever (immutable) and a new build changes the URL.
type assets struct{ byName map[string]*asset }

func loadAssets() (*assets, error) {
	a := &assets{byName: map[string]*asset{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(b)
		if err := zw.Close(); err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		a.byName[name] = &asset{name: name, hash: hex.EncodeToString(sum[:6]), ctype: ctype, plain: b, gz: gz.Bytes()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	return a, nil
}

// url is the content-hashed URL of a static file; an unknown name is an
// error, so a template naming a missing file fails at start-up.
func (a *assets) url(name string) (string, error) {
	x, ok := a.byName[name]
	if !ok {
		return "", fmt.Errorf("web: no static file %q", name)
	}
	return "/static/" + x.hash + "/" + x.name, nil
}

// serve answers GET /static/{hash}/{name}: gzip-compressed when the client
// accepts it, cached for a year as immutable. A stale hash answers 404, so
// no old URL ever serves new content under a long cache.
func (a *assets) serve(w http.ResponseWriter, r *http.Request) {
	x, ok := a.byName[r.PathValue("name")]
	if !ok || x.hash != r.PathValue("hash") {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", x.ctype)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Vary", "Accept-Encoding")
	body := x.plain
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = x.gz
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
