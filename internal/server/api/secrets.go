package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// secretRefKey is the definition key that names a stored secret.
const secretRefKey = "password_secret"

// Secrets the API creates are named "job/NAME/password-RANDOM" or
// "source/NAME/password-RANDOM": a fresh name per password, so a failed or
// concurrent change, a rename or a re-created name never overwrites the
// secret another object refers to.
var managedPrefixes = []string{"job/", "source/"}

func managedSecret(name string) bool {
	for _, p := range managedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func newSecretName(kind, object, label string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return kind + "/" + object + "/" + label + "-" + hex.EncodeToString(b[:])
}

// definitionObject parses a definition, which must be a JSON object
// (absent: empty).
func definitionObject(def json.RawMessage) (map[string]json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if len(def) == 0 || string(def) == "null" {
		return obj, nil
	}
	if err := json.Unmarshal(def, &obj); err != nil || obj == nil {
		return nil, badRequest("definition must be a JSON object")
	}
	return obj, nil
}

// secretField is a definition key whose value the API seals into a
// secret: the inline key is replaced by refKey naming the secret.
type secretField struct {
	inline, refKey, label string
}

var (
	passwordField = secretField{inline: "password", refKey: secretRefKey, label: "password"}
	// sshKeyField is the private key for guest processing over SSH.
	sshKeyField = secretField{inline: "guest_ssh_key", refKey: "guest_ssh_key_secret", label: "ssh-key"}
)

// inlineValue removes the field's inline key from obj and merges it with
// the value given outside the definition.
func inlineValue(obj map[string]json.RawMessage, f secretField, value string) (string, error) {
	raw, ok := obj[f.inline]
	if !ok {
		return value, nil
	}
	delete(obj, f.inline)
	var inline string
	if json.Unmarshal(raw, &inline) != nil {
		return "", badRequest("definition %s must be a string", f.inline)
	}
	if value != "" && inline != value {
		return "", badRequest("two different %ss given", f.label)
	}
	return inline, nil
}

// sealPassword moves an inline password (the password argument, or a
// "password" key of def) into a new configdb secret of kind/object and
// returns def with "password_secret" naming it, and the new secret's name
// ("" if none). keep is the definition being replaced: its reference is kept
// when no password is given.
func (s *Server) sealPassword(ctx context.Context, def json.RawMessage, password, kind, object string,
	keep json.RawMessage) (json.RawMessage, string, error) {
	return s.sealField(ctx, def, passwordField, password, kind, object, keep)
}

// sealField seals one secret field of def (see sealPassword).
func (s *Server) sealField(ctx context.Context, def json.RawMessage, f secretField, value, kind, object string,
	keep json.RawMessage) (json.RawMessage, string, error) {
	obj, err := definitionObject(def)
	if err != nil {
		return nil, "", err
	}
	if value, err = inlineValue(obj, f, value); err != nil {
		return nil, "", err
	}
	var given string
	if raw, ok := obj[f.refKey]; ok {
		if json.Unmarshal(raw, &given) != nil || given == "" {
			return nil, "", badRequest("%s must be a secret name", f.refKey)
		}
		if managedSecret(given) && given != fieldRef(keep, f) {
			return nil, "", badRequest("%s %q belongs to another object", f.refKey, given)
		}
	}
	var created string
	switch {
	case value != "":
		created = newSecretName(kind, object, f.label)
		if err := s.store.PutSecret(ctx, created, []byte(value)); err != nil {
			return nil, "", err
		}
		obj[f.refKey], _ = json.Marshal(created)
	case given == "" && fieldRef(keep, f) != "":
		obj[f.refKey], _ = json.Marshal(fieldRef(keep, f))
	}
	out, err := json.Marshal(obj)
	if err != nil {
		s.dropSecret(ctx, created)
		return nil, "", err
	}
	return out, created, nil
}

// secretRef returns the password secret a definition refers to, or "".
func secretRef(def json.RawMessage) string { return fieldRef(def, passwordField) }

// fieldRef returns the secret a definition's field refers to, or "".
func fieldRef(def json.RawMessage, f secretField) string {
	var v map[string]json.RawMessage
	_ = json.Unmarshal(def, &v)
	var ref string
	_ = json.Unmarshal(v[f.refKey], &ref)
	return ref
}

// dropSecret deletes secret name if the API manages it ("" and secrets
// named by the user are left alone).
func (s *Server) dropSecret(ctx context.Context, name string) {
	if name == "" || !managedSecret(name) {
		return
	}
	err := s.store.DeleteSecret(context.WithoutCancel(ctx), name)
	if err != nil && !errors.Is(err, configdb.ErrNotFound) {
		s.log.Warn("delete secret", "secret", name, "err", err)
	}
}
