package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// CSP is the Content-Security-Policy of every console answer.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"

// page is one console page.
type page struct {
	Path   string // under /console/
	Title  string
	Nav    string // the navigation entry it is
	Script string // its asset
	File   string // its template under static/
}

// pages lists the console's pages.
var pages = []page{
	{"login", "Log in", "", "login.js", "login.html"},
	{"", "Dashboard", "dashboard", "dashboard.js", "app.html"},
	{"jobs", "Jobs", "jobs", "jobs.js", "app.html"},
	{"sessions", "Sessions", "sessions", "sessions.js", "app.html"},
	{"points", "Restore points", "points", "points.js", "app.html"},
	{"infrastructure", "Infrastructure", "infrastructure", "infrastructure.js", "app.html"},
	{"users", "Users", "users", "users.js", "app.html"},
	{"notifications", "Notifications", "notifications", "notifications.js", "app.html"},
}

type asset struct {
	body  []byte
	hash  string
	ctype string
}

// Handler serves the console; see the package documentation.
type Handler struct {
	assets map[string]asset
	pages  map[string][]byte // by path under /console/
}

// New renders the pages and hashes the assets.
func New() (*Handler, error) {
	h := &Handler{assets: map[string]asset{}, pages: map[string][]byte{}}
	err := fs.WalkDir(files, "static/assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h.assets[path.Base(p)] = asset{body: b, hash: hex.EncodeToString(sum[:8]), ctype: contentType(p)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console assets: %w", err)
	}
	funcs := template.FuncMap{"asset": h.assetURL}
	for _, pg := range pages {
		t, err := template.New(pg.File).Funcs(funcs).ParseFS(files, "static/"+pg.File)
		if err != nil {
			return nil, fmt.Errorf("console page %s: %w", pg.File, err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, pg); err != nil {
			return nil, fmt.Errorf("console page %s: %w", pg.File, err)
		}
		h.pages[pg.Path] = buf.Bytes()
	}
	return h, nil
}

// assetURL is the cache-busting URL of asset name.
func (h *Handler) assetURL(name string) (string, error) {
	a, ok := h.assets[name]
	if !ok {
		return "", fmt.Errorf("no console asset %q", name)
	}
	return "/console/assets/" + name + "?v=" + a.hash, nil
}

// securityHeaders sets the headers every console answer carries.
func securityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// ServeHTTP serves / (a redirect), /console/… pages and assets; anything
// else is 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch p := r.URL.Path; {
	case p == "/" || p == "/console":
		http.Redirect(w, r, "/console/", http.StatusFound)
	case strings.HasPrefix(p, "/console/assets/"):
		h.serveAsset(w, r, strings.TrimPrefix(p, "/console/assets/"))
	case strings.HasPrefix(p, "/console/"):
		body, ok := h.pages[strings.TrimSuffix(strings.TrimPrefix(p, "/console/"), "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("ETag", `"`+a.hash+`"`)
	if r.URL.Query().Get("v") == a.hash {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == `"`+a.hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(a.body)
}

// contentType is the type of an asset, by its extension (not the system's
// MIME tables, which vary).
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}
