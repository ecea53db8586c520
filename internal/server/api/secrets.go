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

func newSecretName(kind, object string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return kind + "/" + object + "/password-" + hex.EncodeToString(b[:])
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

// inlinePassword removes a "password" key from obj and merges it with the
// password field.
func inlinePassword(obj map[string]json.RawMessage, password string) (string, error) {
	raw, ok := obj["password"]
	if !ok {
		return password, nil
	}
	delete(obj, "password")
	var inline string
	if json.Unmarshal(raw, &inline) != nil {
		return "", badRequest("definition password must be a string")
	}
	if password != "" && inline != password {
		return "", badRequest("two different passwords given")
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
	obj, err := definitionObject(def)
	if err != nil {
		return nil, "", err
	}
	if password, err = inlinePassword(obj, password); err != nil {
		return nil, "", err
	}
	var given string
	if raw, ok := obj[secretRefKey]; ok {
		if json.Unmarshal(raw, &given) != nil || given == "" {
			return nil, "", badRequest("%s must be a secret name", secretRefKey)
		}
		if managedSecret(given) && given != secretRef(keep) {
			return nil, "", badRequest("%s %q belongs to another object", secretRefKey, given)
		}
	}
	var created string
	switch {
	case password != "":
		created = newSecretName(kind, object)
		if err := s.store.PutSecret(ctx, created, []byte(password)); err != nil {
			return nil, "", err
		}
		obj[secretRefKey], _ = json.Marshal(created)
	case given == "" && secretRef(keep) != "":
		obj[secretRefKey], _ = json.Marshal(secretRef(keep))
	}
	out, err := json.Marshal(obj)
	if err != nil {
		s.dropSecret(ctx, created)
		return nil, "", err
	}
	return out, created, nil
}

// secretRef returns the secret a definition refers to, or "".
func secretRef(def json.RawMessage) string {
	var v struct {
		Ref string `json:"password_secret"`
	}
	_ = json.Unmarshal(def, &v)
	return v.Ref
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
