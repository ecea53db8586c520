package file

import (
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"
)

// go-qcow2reader reads deflate-compressed clusters itself and zstd ones
// through a decompressor registered here, once, before any image is opened.
// A compressed cluster is at most 2 MiB, so decoding memory is bounded.
func init() {
	qcow2.SetDecompressor(qcow2.CompressionTypeZstd, newZstdReader)
}

const zstdMaxMemory = 8 << 20

func newZstdReader(r io.Reader) (io.ReadCloser, error) {
	dec, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(zstdMaxMemory),
		zstd.WithDecoderMaxWindow(zstdMaxMemory))
	if err != nil {
		return nil, err
	}
	return dec.IOReadCloser(), nil
}
