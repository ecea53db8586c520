package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apiclient"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// HeartbeatInterval is how often agents report to the server.
const HeartbeatInterval = 10 * time.Second

// Client calls the server's agent endpoints with the agent's certificate.
type Client struct {
	api  *apiclient.Client
	caps any // capabilities sent with every heartbeat (nil: none)
	// onReply, if set, gets every successful heartbeat's reply (its Peers,
	// in replies to a repository agent, are the certificates that may use
	// its data mover service now: see PeerSet).
	onReply func(apitypes.HeartbeatReply)
}

// OnReply makes every later successful heartbeat pass its reply to fn (a
// repository agent updates its PeerSet). Call it before HeartbeatLoop.
func (c *Client) OnReply(fn func(apitypes.HeartbeatReply)) { c.onReply = fn }

// SetCapabilities sets what every later heartbeat announces (a JSON
// object, e.g. a proxy's transports and reach). Call it before
// HeartbeatLoop.
func (c *Client) SetCapabilities(v any) { c.caps = v }

// NewClient returns a client of the server at serverURL authenticated by c.
func NewClient(serverURL string, c *Credentials) (*Client, error) {
	cert, err := c.Certificate()
	if err != nil {
		return nil, err
	}
	trust, err := c.Trust()
	if err != nil {
		return nil, err
	}
	hc := newHTTPClient(trust.ClientTLSConfig(&cert, pki.RoleServer, ""))
	return &Client{api: apiclient.New(serverURL, hc, "")}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.api.HTTPClient().CloseIdleConnections() }

// Heartbeat tells the server the agent is alive, serving on address ("":
// unchanged) with slots (0: unchanged).
func (c *Client) Heartbeat(ctx context.Context, address string, slots int) error {
	body := apitypes.HeartbeatRequest{Address: address, Slots: slots}
	if c.caps != nil {
		caps, err := json.Marshal(c.caps)
		if err != nil {
			return fmt.Errorf("heartbeat capabilities: %w", err)
		}
		body.Capabilities = caps
	}
	var reply apitypes.HeartbeatReply
	if err := c.api.Do(ctx, "POST", "/api/v1/agents/heartbeat", body, &reply); err != nil {
		return err
	}
	if c.onReply != nil {
		c.onReply(reply)
	}
	return nil
}

// HeartbeatLoop heartbeats now and every interval until ctx ends; failures
// go to onErr (nil: ignored) and do not stop the loop.
func (c *Client) HeartbeatLoop(ctx context.Context, interval time.Duration, address string, slots int, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := c.Heartbeat(ctx, address, slots); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
