package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// Secrets the API creates are named "job/NAME/password-RANDOM" or
// "source/NAME/password-RANDOM": a fresh name per password, so a failed or
// concurrent change, a rename or a re-created name never overwrites the
// secret another object refers to.
var managedPrefixes = []string{"job/", "source/", "notification/"}

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

// secretSlot is a secret a definition may carry: inline is the value given
// in the request, which the API seals into a new secret; ref names the
// stored secret, the only thing kept.
type secretSlot struct {
	inline, ref    *string
	label, refName string // "password", "password_secret"
}

// passwordSlot is a job's repository password.
func passwordSlot(d *jobdef.Definition) secretSlot {
	return secretSlot{inline: &d.Password, ref: &d.PasswordSecret, label: "password", refName: "password_secret"}
}

// copyPasswordSlot is a copy job's target repository password (d.Copy
// not nil).
func copyPasswordSlot(d *jobdef.Definition) secretSlot {
	return secretSlot{inline: &d.Copy.ToPassword, ref: &d.Copy.ToPasswordSecret, label: "to-password",
		refName: "copy.to_password_secret"}
}

// sshKeySlot is a job's private key for guest processing over SSH.
func sshKeySlot(d *jobdef.Definition) secretSlot {
	return secretSlot{inline: &d.GuestSSHKey, ref: &d.GuestKeySecret, label: "ssh-key", refName: "guest_ssh_key_secret"}
}

// seal moves the slot's secret — given inline, or as value from outside
// the definition — into a new configdb secret of kind/object, pointing the
// slot's reference at it, and returns the new secret's name ("" if none).
// keep is the reference of the definition being replaced: it is kept when
// no value is given. A reference to another object's managed secret is
// refused.
func (s *Server) seal(ctx context.Context, slot secretSlot, value, kind, object, keep string) (string, error) {
	if inline := *slot.inline; inline != "" {
		if value != "" && inline != value {
			return "", badRequest("two different %ss given", slot.label)
		}
		value = inline
		*slot.inline = ""
	}
	given := *slot.ref
	if given != "" && managedSecret(given) && given != keep {
		return "", badRequest("definition.%s %q belongs to another object", slot.refName, given)
	}
	switch {
	case value != "":
		created := newSecretName(kind, object, slot.label)
		if err := s.store.PutSecret(ctx, created, []byte(value)); err != nil {
			return "", err
		}
		*slot.ref = created
		return created, nil
	case given == "":
		*slot.ref = keep
	}
	return "", nil
}

// secretRef returns the password secret a stored job or source definition
// refers to, or "".
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
