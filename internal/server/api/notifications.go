package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/notify"
)

// NotificationTester sends a test message to a notification target now
// (the notifier); the error is the SMTP or HTTP failure, secrets redacted.
type NotificationTester interface {
	Test(ctx context.Context, target string) error
}

// checkNotifyTargets refuses a job whose notification rules name a
// target the server does not have.
func (s *Server) checkNotifyTargets(ctx context.Context, rules []jobdef.Notify) error {
	for i, n := range rules {
		_, err := s.store.GetNotificationTarget(ctx, n.Target)
		if errors.Is(err, configdb.ErrNotFound) {
			return badRequest("definition.notify[%d].target: no notification target %q (holdfast notification add)", i, n.Target)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// targetFromRequest validates req and seals its secret (a new secret per
// value); keep is the secret of the target being replaced. It returns the
// stored form and the secret it created ("" if none).
func (s *Server) targetFromRequest(ctx context.Context, req apitypes.NotificationTargetRequest, keep string) (configdb.NotificationTarget, string, error) {
	t := req.NotificationTarget
	if err := notify.Validate(&t); err != nil {
		return configdb.NotificationTarget{}, "", badRequest("%s", strings.TrimPrefix(err.Error(), notify.ErrInvalid.Error()+": "))
	}
	if req.Secret != "" && req.ClearSecret {
		return configdb.NotificationTarget{}, "", badRequest("secret and clear_secret given together")
	}
	secret, created := keep, ""
	switch {
	case req.Secret != "":
		created = newSecretName("notification", t.Name, "secret")
		if err := s.store.PutSecret(ctx, created, []byte(req.Secret)); err != nil {
			return configdb.NotificationTarget{}, "", err
		}
		secret = created
	case req.ClearSecret:
		secret = ""
	}
	return notify.ToStore(t, secret), created, nil
}

func (s *Server) createNotification(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req apitypes.NotificationTargetRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	st, created, err := s.targetFromRequest(r.Context(), req, "")
	if err != nil {
		return err
	}
	out, err := s.store.CreateNotificationTarget(r.Context(), st)
	if err != nil {
		s.dropSecret(r.Context(), created)
		return err
	}
	return s.answerTarget(w, r, p, "notification.create", http.StatusCreated, out)
}

func (s *Server) updateNotification(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req apitypes.NotificationTargetRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	if req.Name != "" && req.Name != name {
		return badRequest("a notification target cannot be renamed (add a new one)")
	}
	req.Name = name
	old, err := s.store.GetNotificationTarget(r.Context(), name)
	if err != nil {
		return err
	}
	st, created, err := s.targetFromRequest(r.Context(), req, old.Secret)
	if err != nil {
		return err
	}
	out, err := s.store.UpdateNotificationTarget(r.Context(), st)
	if err != nil {
		s.dropSecret(r.Context(), created)
		return err
	}
	if old.Secret != out.Secret {
		s.dropSecret(r.Context(), old.Secret)
	}
	return s.answerTarget(w, r, p, "notification.update", http.StatusOK, out)
}

func (s *Server) answerTarget(w http.ResponseWriter, r *http.Request, p configdb.Principal, action string, status int, t configdb.NotificationTarget) error {
	v, err := notify.FromStore(t)
	if err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, action, t.Name, map[string]any{"kind": t.Kind}); err != nil {
		return err
	}
	writeJSON(w, status, v)
	return nil
}

func (s *Server) listNotificationTargets(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	ts, err := s.store.ListNotificationTargets(r.Context())
	if err != nil {
		return err
	}
	out := make([]apitypes.NotificationTarget, 0, len(ts))
	for _, t := range ts {
		v, err := notify.FromStore(t)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getNotificationTarget(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	t, err := s.store.GetNotificationTarget(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	v, err := notify.FromStore(t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) deleteNotification(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	name := r.PathValue("name")
	t, err := s.store.GetNotificationTarget(r.Context(), name)
	if err != nil {
		return err
	}
	if err := s.store.DeleteNotificationTarget(r.Context(), name); err != nil {
		return err
	}
	s.dropSecret(r.Context(), t.Secret)
	if err := s.audit(r.Context(), p, "notification.delete", name, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// testNotification sends a test message now; a failure to deliver is the
// answer's error (200), not an API error.
func (s *Server) testNotification(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	if s.notifier == nil {
		return newError(http.StatusServiceUnavailable, "unavailable", "this server sends no notifications")
	}
	name := r.PathValue("name")
	if _, err := s.store.GetNotificationTarget(r.Context(), name); err != nil {
		return err
	}
	out := apitypes.NotificationTest{Target: name, Delivered: true}
	if err := s.notifier.Test(r.Context(), name); err != nil {
		if errors.Is(err, configdb.ErrNotFound) {
			return err
		}
		out.Delivered, out.Error = false, err.Error()
	}
	if err := s.audit(r.Context(), p, "notification.test", name, map[string]any{"delivered": out.Delivered}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listNotifications(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	q := r.URL.Query()
	lim, _ := strconv.Atoi(q.Get("limit"))
	ns, err := s.store.ListNotifications(r.Context(), configdb.NotificationFilter{Target: q.Get("target"),
		State: q.Get("state"), Limit: lim})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(ns, func(n configdb.Notification) apitypes.Notification { return viewNotification(n, false) }))
	return nil
}

func (s *Server) getNotification(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return badRequest("notification id %q: want a number", r.PathValue("id"))
	}
	n, err := s.store.GetNotification(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewNotification(n, true))
	return nil
}

func viewNotification(n configdb.Notification, full bool) apitypes.Notification {
	v := apitypes.Notification{ID: n.ID, Target: n.Target, Session: n.SessionID, Event: n.Event, State: n.State,
		Attempts: n.Attempts, Created: n.Created, LastError: n.LastError}
	if n.State == configdb.NotificationPending {
		v.NextAt = ptrTime(n.NextAt)
	}
	if !n.Delivered.IsZero() {
		v.Delivered = ptrTime(n.Delivered)
	}
	if full {
		v.Message = n.Message
		for _, l := range strings.Split(strings.TrimSpace(n.Log), "\n") {
			if l != "" {
				v.Log = append(v.Log, l)
			}
		}
	}
	return v
}

func ptrTime(t time.Time) *time.Time { return &t }
