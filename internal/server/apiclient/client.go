package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxAnswer bounds an answer's body.
const maxAnswer = 64 << 20

// Client calls the REST API of one server.
type Client struct {
	base  string // server URL without a trailing slash
	token string // bearer token ("": none, e.g. agents with certificates)
	hc    *http.Client
}

// New returns a client of the server at base (e.g. https://host:8443)
// sending requests through hc with token as bearer token ("": none).
func New(base string, hc *http.Client, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), token: token, hc: hc}
}

// Base returns the server URL.
func (c *Client) Base() string { return c.base }

// HasToken reports whether the client sends a bearer token.
func (c *Client) HasToken() bool { return c.token != "" }

// HTTPClient returns the HTTP client requests go through.
func (c *Client) HTTPClient() *http.Client { return c.hc }

// WithHTTPClient returns a copy of the client sending through hc.
func (c *Client) WithHTTPClient(hc *http.Client) *Client {
	u := *c
	u.hc = hc
	return &u
}

// Do sends a request with body (nil: none) encoded as JSON and decodes a
// 2xx answer into out (nil: ignore; *json.RawMessage: keep as is).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err // a *url.Error: names the method and URL
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		return answerError(resp.StatusCode, data)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], data...)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("server %s: unexpected answer: %w", c.base, err)
	}
	return nil
}
