package configdb

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// Agent is a registered proxy or repository.
type Agent struct {
	ID              int64
	Role            string // AgentProxy or AgentRepository
	Name            string
	Address         string // host:port it serves on (repositories), or ""
	Slots           int    // concurrent task slots
	Capabilities    json.RawMessage
	CertFingerprint string // of the certificate the CA issued it (pki.Fingerprint)
	Registered      time.Time
	LastHeartbeat   time.Time // zero: never
}

const agentColumns = `id, role, name, address, slots, capabilities, cert_fingerprint, registered_at, last_heartbeat`

func scanAgent(sc interface{ Scan(...any) error }) (Agent, error) {
	var a Agent
	err := sc.Scan(&a.ID, &a.Role, &a.Name, &a.Address, &a.Slots, jsonCol{&a.Capabilities},
		&a.CertFingerprint, timeCol{&a.Registered}, timeCol{&a.LastHeartbeat})
	return a, err
}

// UpsertAgent registers the agent (role, name), or updates its address,
// slots, capabilities and certificate fingerprint, and returns the row.
func (s *Store) UpsertAgent(ctx context.Context, a Agent) (Agent, error) {
	if !validAgentRole(a.Role) {
		return Agent{}, invalid("agent role %q", a.Role)
	}
	if strings.TrimSpace(a.Name) == "" || a.Slots < 0 {
		return Agent{}, invalid("agent name %q, slots %d", a.Name, a.Slots)
	}
	caps, err := jsonArg("capabilities", a.Capabilities, "{}")
	if err != nil {
		return Agent{}, err
	}
	_, err = s.exec(ctx, s.db, `INSERT INTO agents (role, name, address, slots, capabilities, cert_fingerprint, registered_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (role, name) DO UPDATE SET address = excluded.address, slots = excluded.slots,
			capabilities = excluded.capabilities, cert_fingerprint = excluded.cert_fingerprint`,
		a.Role, a.Name, a.Address, a.Slots, caps, a.CertFingerprint, s.timestamp())
	if err != nil {
		return Agent{}, s.wrapNamed("register agent "+a.Name, a.Name, err)
	}
	return s.GetAgent(ctx, a.Role, a.Name)
}

// GetAgent returns the agent (role, name).
func (s *Store) GetAgent(ctx context.Context, role, name string) (Agent, error) {
	a, err := scanAgent(s.queryRow(ctx, s.db,
		"SELECT "+agentColumns+" FROM agents WHERE role = ? AND name = ?", role, name))
	return a, s.wrap("agent "+role+" "+name, err)
}

// Heartbeat records that the agent (role, name) is alive now.
func (s *Store) Heartbeat(ctx context.Context, role, name string) error {
	return s.execOne(ctx, "heartbeat of "+role+" "+name,
		"UPDATE agents SET last_heartbeat = ? WHERE role = ? AND name = ?", s.timestamp(), role, name)
}

// ListAgents lists agents of role ("" for all) by role and name.
func (s *Store) ListAgents(ctx context.Context, role string) ([]Agent, error) {
	q, args := "SELECT "+agentColumns+" FROM agents", []any{}
	if role != "" {
		q, args = q+" WHERE role = ?", append(args, role)
	}
	rows, err := s.query(ctx, s.db, q+" ORDER BY role, name", args...)
	if err != nil {
		return nil, s.wrap("list agents", err)
	}
	defer rows.Close()
	var out []Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, s.wrap("list agents", err)
		}
		out = append(out, a)
	}
	return out, s.wrap("list agents", rows.Err())
}

// DeleteAgent removes the agent (role, name); its certificate fingerprint
// goes with it, which is how an agent is revoked.
func (s *Store) DeleteAgent(ctx context.Context, role, name string) error {
	return s.execOne(ctx, "delete agent "+role+" "+name, "DELETE FROM agents WHERE role = ? AND name = ?", role, name)
}
