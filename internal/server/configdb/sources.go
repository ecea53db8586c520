package configdb

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// Source is a configured source platform (file, nbd, qemu, vsphere …).
// Credentials are not in Definition: it names a secret instead.
type Source struct {
	ID         int64
	Name       string // unique
	Kind       string
	Definition json.RawMessage
	Created    time.Time
	Updated    time.Time
}

const sourceColumns = `id, name, kind, definition, created_at, updated_at`

func scanSource(sc interface{ Scan(...any) error }) (Source, error) {
	var src Source
	err := sc.Scan(&src.ID, &src.Name, &src.Kind, jsonCol{&src.Definition}, timeCol{&src.Created}, timeCol{&src.Updated})
	return src, err
}

func checkSource(src Source) (any, error) {
	if strings.TrimSpace(src.Name) == "" || src.Kind == "" {
		return nil, invalid("source needs a name and a kind")
	}
	return jsonArg("source definition", src.Definition, "{}")
}

// CreateSource stores a new source; a name in use is ErrConflict.
func (s *Store) CreateSource(ctx context.Context, src Source) (Source, error) {
	def, err := checkSource(src)
	if err != nil {
		return Source{}, err
	}
	now := s.timestamp()
	out, err := scanSource(s.queryRow(ctx, s.db, `INSERT INTO sources (name, kind, definition, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?) RETURNING `+sourceColumns, src.Name, src.Kind, def, now, now))
	return out, s.wrapNamed("create source "+src.Name, src.Name, err)
}

// GetSource returns the source called name.
func (s *Store) GetSource(ctx context.Context, name string) (Source, error) {
	src, err := scanSource(s.queryRow(ctx, s.db, "SELECT "+sourceColumns+" FROM sources WHERE name = ?", name))
	return src, s.wrap("source "+name, err)
}

// ListSources lists the sources by name.
func (s *Store) ListSources(ctx context.Context) ([]Source, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+sourceColumns+" FROM sources ORDER BY name")
	if err != nil {
		return nil, s.wrap("list sources", err)
	}
	defer rows.Close()
	var out []Source
	for rows.Next() {
		src, err := scanSource(rows)
		if err != nil {
			return nil, s.wrap("list sources", err)
		}
		out = append(out, src)
	}
	return out, s.wrap("list sources", rows.Err())
}

// UpdateSource replaces the name, kind and definition of the source src.ID.
func (s *Store) UpdateSource(ctx context.Context, src Source) (Source, error) {
	def, err := checkSource(src)
	if err != nil {
		return Source{}, err
	}
	out, err := scanSource(s.queryRow(ctx, s.db, `UPDATE sources SET name = ?, kind = ?, definition = ?, updated_at = ?
		WHERE id = ? RETURNING `+sourceColumns, src.Name, src.Kind, def, s.timestamp(), src.ID))
	return out, s.wrapNamed("update source "+src.Name, src.Name, err)
}

// DeleteSource deletes the source called name.
func (s *Store) DeleteSource(ctx context.Context, name string) error {
	return s.execOne(ctx, "delete source "+name, "DELETE FROM sources WHERE name = ?", name)
}
