package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// SignatureHeader carries the HMAC-SHA256 of the webhook body.
const SignatureHeader = "X-Holdfast-Signature"

// Sign returns the X-Holdfast-Signature value of body under key:
// "sha256=" and the lower-case hex HMAC-SHA256.
func Sign(key, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether sig is body's signature under key (constant time).
func Verify(key, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(key, body)), []byte(sig))
}

// sendWebhook POSTs m as JSON; a 2xx answer delivers it. Redirects are
// not followed (a signed body goes only where it was configured to).
func sendWebhook(ctx context.Context, c *apitypes.WebhookConfig, key []byte, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "holdfast-notify/1")
	req.Header.Set("X-Holdfast-Event", m.Event)
	if len(key) > 0 {
		req.Header.Set(SignatureHeader, Sign(key, body))
	}
	tr := &http.Transport{TLSClientConfig: tlsConfig(req.URL.Hostname(), c.CAPEM), Proxy: http.ProxyFromEnvironment,
		TLSHandshakeTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return fmt.Errorf("webhook answered %s: %s", resp.Status, printable(strings.TrimSpace(string(snippet))))
}
