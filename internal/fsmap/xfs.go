package fsmap

import (
	"context"
	"io"
)

func xfsFree(ctx context.Context, r io.ReaderAt, size int64) ([]Range, error) { return nil, nil }
