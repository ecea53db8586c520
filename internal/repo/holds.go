package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// Hold keeps a restore point from being removed — by forget, by the
// server's retention through the repository agent — and so its chunks
// from gc, while something uses it: an instant recovery session serving
// it. It is the plain JSON file holds/<point id>/<holder id>; it needs no
// key, so a session is ended (and its hold released) without the
// repository password.
type Hold struct {
	Point  string    `json:"point"`
	Holder string    `json:"holder"` // unique per point, e.g. the session ID
	Who    string    `json:"who"`    // host and process (or proxy) that holds it
	Why    string    `json:"why"`
	Since  time.Time `json:"since"`
}

var holderPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)

func holdName(point, holder string) string { return "holds/" + point + "/" + holder }

// ValidateHolder checks a holder ID: 1-128 letters, digits and ._@+-,
// not starting with a punctuation character.
func ValidateHolder(holder string) error {
	if !holderPattern.MatchString(holder) {
		return fmt.Errorf("hold: invalid holder id %q", holder)
	}
	return nil
}

func checkHoldNames(point, holder string) error {
	if !pointIDPattern.MatchString(point) {
		return fmt.Errorf("hold: invalid point id %q", point)
	}
	return ValidateHolder(holder)
}

func (h Hold) String() string {
	return fmt.Sprintf("held by %s (%s) since %s: %s", h.Holder, h.Who, h.Since.Local().Format("2006-01-02 15:04:05"), h.Why)
}

// PutHold records a hold, replacing the holder's earlier one. It writes
// the hold first and then checks that the point exists: a RemovePoint
// running at the same time either sees the hold or removed the manifest
// before the check, and then PutHold takes the hold back and fails with
// ErrPointNotFound.
func PutHold(ctx context.Context, be storage.Backend, h Hold) error {
	if err := checkHoldNames(h.Point, h.Holder); err != nil {
		return err
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	name := holdName(h.Point, h.Holder)
	if err := be.Save(ctx, name, b); err != nil {
		return fmt.Errorf("hold point %s: %w", h.Point, err)
	}
	if err := be.Sync(ctx); err != nil {
		return fmt.Errorf("hold point %s: %w", h.Point, err)
	}
	if _, err := be.Stat(ctx, manifestName(h.Point)); errors.Is(err, storage.ErrNotExist) {
		_ = ReleaseHold(ctx, be, h.Point, h.Holder)
		return fmt.Errorf("hold point %s: %w", h.Point, ErrPointNotFound)
	} else if err != nil {
		return fmt.Errorf("hold point %s: %w", h.Point, err)
	}
	return nil
}

// ReleaseHold removes a hold; releasing a hold that is not there is not
// an error.
func ReleaseHold(ctx context.Context, be storage.Backend, point, holder string) error {
	if err := checkHoldNames(point, holder); err != nil {
		return err
	}
	if err := be.Remove(ctx, holdName(point, holder)); err != nil {
		return fmt.Errorf("release hold %s on point %s: %w", holder, point, err)
	}
	return be.Sync(ctx)
}

// ListHolds returns the holds under dir ("holds" or "holds/<point>"),
// by point and holder. A hold file that does not parse still holds its
// point (its Why says it is unreadable); other names are not holds.
func ListHolds(ctx context.Context, be storage.Backend, dir string) ([]Hold, error) {
	var out []Hold
	err := be.List(ctx, dir, func(fi storage.FileInfo) error {
		rest, _ := strings.CutPrefix(fi.Name, "holds/")
		point, holder := path.Dir(rest), path.Base(rest)
		if checkHoldNames(point, holder) != nil || holdName(point, holder) != fi.Name {
			return nil
		}
		b, err := be.Load(ctx, fi.Name)
		if errors.Is(err, storage.ErrNotExist) {
			return nil // released meanwhile
		}
		if err != nil {
			return err
		}
		var h Hold
		if json.Unmarshal(b, &h) != nil {
			h = Hold{Why: "unreadable hold file", Since: fi.ModTime}
		}
		h.Point, h.Holder = point, holder
		out = append(out, h)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Point < out[j].Point || out[i].Point == out[j].Point && out[i].Holder < out[j].Holder
	})
	return out, nil
}

// HoldPoint records a hold on a point of this repository (PutHold), since
// now if h.Since is zero.
func (r *Repository) HoldPoint(ctx context.Context, h Hold) error {
	if h.Since.IsZero() {
		h.Since = r.now().UTC()
	}
	return PutHold(ctx, r.be, h)
}

// ReleaseHold removes a hold of this repository (ReleaseHold).
func (r *Repository) ReleaseHold(ctx context.Context, point, holder string) error {
	return ReleaseHold(ctx, r.be, point, holder)
}

// Holds returns every hold of the repository.
func (r *Repository) Holds(ctx context.Context) ([]Hold, error) { return ListHolds(ctx, r.be, "holds") }

// checkHolds fails with ErrPointHeld, naming the holders, if the point is
// held.
func (r *Repository) checkHolds(ctx context.Context, id string) error {
	hs, err := ListHolds(ctx, r.be, "holds/"+id)
	if err != nil {
		return fmt.Errorf("remove point %s: %w", id, err)
	}
	if len(hs) == 0 {
		return nil
	}
	var why []string
	for _, h := range hs {
		why = append(why, h.String())
	}
	return fmt.Errorf("point %s: %w: %s", id, ErrPointHeld, strings.Join(why, "; "))
}
