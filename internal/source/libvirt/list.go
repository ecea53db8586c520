package libvirt

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/holdfast-backup/holdfast/internal/libvirtconn"
)

// MetadataNamespace is the XML namespace of Holdfast's element in a
// domain's <metadata>. Its root element's attributes are the domain's
// Holdfast metadata, which a server job's selection matches
// (metadata:KEY=VALUE):
//
//	virsh metadata web1 --uri https://holdfast-backup.org/xmlns/libvirt/1 \
//	    --key holdfast --set '<backup tier="gold" owner="shop"/>'
const MetadataNamespace = "https://holdfast-backup.org/xmlns/libvirt/1"

// Domain is a domain of a libvirt daemon as a listing sees it.
type Domain struct {
	Name string
	// Metadata are the attributes of Holdfast's metadata element (nil:
	// the domain has none).
	Metadata map[string]string
}

// ListDomains lists every domain of the libvirt daemon uri names, running
// or not, with its Holdfast metadata, sorted by name.
func ListDomains(ctx context.Context, uri string) ([]Domain, error) {
	c, err := libvirtconn.Dial(ctx, uri)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	doms, _, err := c.ConnectListAllDomains(1, golibvirt.ConnectListDomainsActive|golibvirt.ConnectListDomainsInactive)
	if err != nil {
		return nil, fmt.Errorf("list the domains of libvirt %s: %w", c.URI(), err)
	}
	out := make([]Domain, 0, len(doms))
	for _, d := range doms {
		md, err := domainMetadata(c.Libvirt, d)
		if err != nil {
			return nil, fmt.Errorf("domain %s on %s: %w", d.Name, c.URI(), err)
		}
		out = append(out, Domain{Name: d.Name, Metadata: md})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// domainMetadata reads the domain's Holdfast metadata (nil: none).
func domainMetadata(l *golibvirt.Libvirt, d golibvirt.Domain) (map[string]string, error) {
	x, err := l.DomainGetMetadata(d, int32(golibvirt.DomainMetadataElement), golibvirt.OptString{MetadataNamespace}, golibvirt.DomainAffectCurrent)
	var lerr golibvirt.Error
	if errors.As(err, &lerr) && lerr.Code == uint32(golibvirt.ErrNoDomainMetadata) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("holdfast metadata: %w", err)
	}
	return ParseMetadata(x)
}

// ParseMetadata reads Holdfast's metadata element as libvirt returns it:
// the attributes of its root element, without namespace declarations.
// Child elements and text are ignored.
func ParseMetadata(x string) (map[string]string, error) {
	dec := xml.NewDecoder(strings.NewReader(x))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the holdfast metadata holds no element")
		}
		if err != nil {
			return nil, fmt.Errorf("holdfast metadata: %w", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		md := map[string]string{}
		for _, a := range start.Attr {
			if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
				continue
			}
			md[a.Name.Local] = a.Value
		}
		return md, nil
	}
}
