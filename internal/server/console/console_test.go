package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func checkSecurityHeaders(t *testing.T, path string, rec *httptest.ResponseRecorder) {
	t.Helper()
	h := rec.Header()
	if h.Get("Content-Security-Policy") != CSP || !strings.Contains(CSP, "default-src 'self'") ||
		!strings.Contains(CSP, "frame-ancestors 'none'") || strings.Contains(CSP, "unsafe") {
		t.Errorf("%s: CSP %q", path, h.Get("Content-Security-Policy"))
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
		if h.Get(k) != v {
			t.Errorf("%s: %s %q, want %q", path, k, h.Get(k), v)
		}
	}
}

var assetRef = regexp.MustCompile(`(?:src|href)="(/console/assets/([a-z.]+)\?v=([0-9a-f]{16}))"`)

func TestPages(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, pg := range pages {
		path := "/console/" + pg.Path
		rec := get(t, h, "GET", path)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" ||
			rec.Header().Get("Cache-Control") != "no-cache" {
			t.Fatalf("%s: %d %v", path, rec.Code, rec.Header())
		}
		checkSecurityHeaders(t, path, rec)
		body := rec.Body.String()
		if !strings.Contains(body, "<title>"+pg.Title+" · Holdfast</title>") {
			t.Errorf("%s: title missing", path)
		}
		refs := assetRef.FindAllStringSubmatch(body, -1)
		if len(refs) != 4 { // style sheet, icon, common.js, the page's script
			t.Errorf("%s: asset references %v", path, refs)
		}
		for _, ref := range refs {
			a := get(t, h, "GET", ref[1])
			if a.Code != http.StatusOK || a.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || a.Body.Len() == 0 {
				t.Errorf("%s: %d %v", ref[1], a.Code, a.Header())
			}
			checkSecurityHeaders(t, ref[1], a)
		}
		if pg.Nav != "" && !strings.Contains(body, `<body data-page="`+pg.Nav+`">`) {
			t.Errorf("%s: body has no data-page %q", path, pg.Nav)
		}
	}
	for path, want := range map[string]int{"/": 302, "/console": 302, "/console/nothing": 404, "/favicon.ico": 404,
		"/console/assets/missing.js": 404, "/console/assets/../console.go": 404} {
		rec := get(t, h, "GET", path)
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
		checkSecurityHeaders(t, path, rec)
	}
	if rec := get(t, h, "GET", "/"); rec.Header().Get("Location") != "/console/" {
		t.Errorf("/ redirects to %q", rec.Header().Get("Location"))
	}
	if rec := get(t, h, "POST", "/console/login"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST a page: %d", rec.Code)
	}
}

// TestAssetCaching: only the current hash is cached for long; the ETag
// answers revalidation.
func TestAssetCaching(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	a := h.assets["common.js"]
	for _, path := range []string{"/console/assets/common.js", "/console/assets/common.js?v=0000000000000000"} {
		rec := get(t, h, "GET", path)
		if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-cache" || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("%s: %d %v", path, rec.Code, rec.Header())
		}
	}
	rec := get(t, h, "GET", "/console/assets/common.js", "If-None-Match", `"`+a.hash+`"`)
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("revalidation: %d", rec.Code)
	}
	if ct := get(t, h, "GET", "/console/assets/console.css").Header().Get("Content-Type"); ct != "text/css; charset=utf-8" {
		t.Errorf("css type %q", ct)
	}
}

// TestNoInlineCode checks the sources the CSP would refuse anyway: no
// inline scripts, styles or event handlers in pages, and no HTML built
// from strings in scripts (API data is text).
func TestNoInlineCode(t *testing.T) {
	inlineHTML := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\sstyle=|\son[a-z]+=|<style|javascript:`)
	unsafeJS := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function|setTimeout\("`)
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := files.ReadFile(p)
		switch {
		case strings.HasSuffix(p, ".html"):
			if m := inlineHTML.FindString(string(b)); m != "" {
				t.Errorf("%s: inline code %q", p, m)
			}
			for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(string(b), -1) {
				if !strings.Contains(tag, ` src="`) {
					t.Errorf("%s: script without src: %s", p, tag)
				}
			}
			if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
				t.Errorf("%s: refers to another site", p)
			}
		case strings.HasSuffix(p, ".js"):
			if m := unsafeJS.FindString(string(b)); m != "" {
				t.Errorf("%s: %q", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
