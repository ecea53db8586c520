package configdb

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MasterKeySize is the size of the server master key.
const MasterKeySize = 32

// HKDF labels: one key seals secrets, another only names the master key.
const (
	secretsKeyInfo = "holdfast configdb secrets v1"
	keyIDInfo      = "holdfast configdb key id v1"
)

func (s *Store) setMasterKey(master []byte) error {
	if master == nil {
		return nil
	}
	if len(master) != MasterKeySize {
		return fmt.Errorf("configdb: master key is %d bytes, want %d: %w", len(master), MasterKeySize, ErrInvalid)
	}
	key, err := hkdf.Key(sha256.New, master, nil, secretsKeyInfo, 32)
	if err != nil {
		return fmt.Errorf("configdb: derive secrets key: %w", err)
	}
	id, err := hkdf.Key(sha256.New, master, nil, keyIDInfo, 8)
	if err != nil {
		return fmt.Errorf("configdb: derive key id: %w", err)
	}
	s.secretKey, s.keyID = key, hex.EncodeToString(id)
	return nil
}

func (s *Store) aead() (cipher.AEAD, error) {
	if s.secretKey == nil {
		return nil, ErrNoMasterKey
	}
	block, err := aes.NewCipher(s.secretKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// PutSecret stores value under name, encrypted with AES-256-GCM (random
// nonce, name as associated data); it replaces an existing secret.
func (s *Store) PutSecret(ctx context.Context, name string, value []byte) error {
	if strings.TrimSpace(name) == "" {
		return invalid("secret name is empty")
	}
	sealed, err := s.seal(value, name)
	if err != nil {
		return err
	}
	now := s.timestamp()
	_, err = s.exec(ctx, s.db, `INSERT INTO secrets (name, key_id, ciphertext, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id,
		ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
		name, s.keyID, sealed, now, now)
	return s.wrapNamed("store secret "+name, name, err)
}

// GetSecret returns the value of secret name. A secret sealed under another
// master key, or altered in the database, is an error saying so.
func (s *Store) GetSecret(ctx context.Context, name string) ([]byte, error) {
	if s.secretKey == nil {
		return nil, ErrNoMasterKey
	}
	var keyID string
	var sealed []byte
	err := s.queryRow(ctx, s.db, "SELECT key_id, ciphertext FROM secrets WHERE name = ?", name).Scan(&keyID, &sealed)
	if err != nil {
		return nil, s.wrap("secret "+name, err)
	}
	if keyID != s.keyID {
		return nil, fmt.Errorf("configdb: secret %s was sealed under master key %s, this server has %s", name, keyID, s.keyID)
	}
	plain, err := s.unseal(sealed, name)
	if err != nil {
		return nil, fmt.Errorf("configdb: secret %s: %w", name, err)
	}
	return plain, nil
}

// seal encrypts value with the secrets key (AES-256-GCM, random nonce
// first, ad as associated data).
func (s *Store) seal(value []byte, ad string) ([]byte, error) {
	gcm, err := s.aead()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(value)+gcm.Overhead())
	rand.Read(nonce) // never fails (crypto/rand)
	return gcm.Seal(nonce, nonce, value, []byte(ad)), nil
}

// unseal opens what seal made with the same ad.
func (s *Store) unseal(sealed []byte, ad string) ([]byte, error) {
	gcm, err := s.aead()
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("ciphertext truncated")
	}
	plain, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], []byte(ad))
	if err != nil {
		return nil, errors.New("authentication failed (altered or moved in the database)")
	}
	return plain, nil
}

// ListSecrets returns the secret names, sorted.
func (s *Store) ListSecrets(ctx context.Context) ([]string, error) {
	rows, err := s.query(ctx, s.db, "SELECT name FROM secrets ORDER BY name")
	if err != nil {
		return nil, s.wrap("list secrets", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, s.wrap("list secrets", err)
		}
		out = append(out, n)
	}
	return out, s.wrap("list secrets", rows.Err())
}

// DeleteSecret deletes secret name.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	return s.execOne(ctx, "delete secret "+name, "DELETE FROM secrets WHERE name = ?", name)
}
