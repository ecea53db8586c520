package api

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// TestTOTPQRCode: enabling TOTP answers the otpauth URL as an SVG QR code
// too: well-formed, self-contained (no script, no link), and its dark
// modules are exactly the URL's QR code.
func TestTOTPQRCode(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[configdb.RoleAdministrator]
	e.mustDo(admin, "POST", "/api/v1/users", `{"name":"qr","role":"viewer","password":"qr-user-password-1"}`, 201)
	key := decodeBody[apitypes.TOTPKey](t, e.mustDo(admin, "POST", "/api/v1/users/qr/totp", "", 201))
	var doc struct {
		XMLName xml.Name `xml:"svg"`
		ViewBox string   `xml:"viewBox,attr"`
		Path    struct {
			D string `xml:"d,attr"`
		} `xml:"path"`
	}
	if err := xml.Unmarshal([]byte(key.QRSVG), &doc); err != nil {
		t.Fatalf("qr_svg is not SVG: %v: %.200s", err, key.QRSVG)
	}
	for _, bad := range []string{"<script", "href", "javascript:", "url("} {
		if strings.Contains(key.QRSVG, bad) {
			t.Fatalf("qr_svg contains %q", bad)
		}
	}
	q, err := qrcode.New(key.URL, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	want := q.Bitmap()
	if doc.ViewBox != fmt.Sprintf("0 0 %d %d", len(want), len(want)) {
		t.Fatalf("viewBox %q for %d modules", doc.ViewBox, len(want))
	}
	got := map[[2]int]bool{}
	for _, sq := range strings.Split(strings.TrimSuffix(doc.Path.D, "z"), "z") {
		var x, y int
		if _, err := fmt.Sscanf(sq, "M%d %dh1v1h-1", &x, &y); err != nil {
			t.Fatalf("path segment %q: %v", sq, err)
		}
		got[[2]int{x, y}] = true
	}
	for y, row := range want {
		for x, dark := range row {
			if got[[2]int{x, y}] != dark {
				t.Fatalf("module (%d,%d): dark %v, want %v", x, y, got[[2]int{x, y}], dark)
			}
		}
	}
}
