package nbd

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

const benchSize = 1 << 30

// benchImage writes a 1 GiB raw image full of data (no holes).
func benchImage(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.img")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for off := int64(0); off < benchSize; off += int64(len(buf)) {
		for i := 0; i < len(buf); i += 8 {
			buf[i] = byte(rng.Uint32()) | 1
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	return path
}

// BenchmarkClientRead reads a 1 GiB export from qemu-nbd on TCP loopback
// sequentially in 4 MiB requests with 4 in flight. BenchmarkNbdcopy is the same transfer
// by libnbd's nbdcopy, for comparison.
func BenchmarkClientRead(b *testing.B) {
	needBins(b, "qemu-nbd")
	url := startQemuNBD(b, false, "-f", "raw", "-r", benchImage(b))
	c, err := Dial(context.Background(), url, ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const chunk, inFlight = 4 << 20, 4
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for w := range inFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, chunk)
				for off := int64(w) * chunk; off < benchSize; off += inFlight * chunk {
					if _, err := c.ReadAtContext(context.Background(), buf, off); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}

func BenchmarkNbdcopy(b *testing.B) {
	needBins(b, "qemu-nbd", "nbdcopy")
	url := startQemuNBD(b, false, "-f", "raw", "-r", benchImage(b))
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		if out, err := exec.Command("nbdcopy", url, "null:").CombinedOutput(); err != nil {
			b.Fatalf("nbdcopy: %v\n%s", err, out)
		}
	}
}

// BenchmarkMultiConnRead is BenchmarkClientRead over 4 connections (as
// nbdcopy uses against a multi-conn server) with 4 requests in flight on
// each.
func BenchmarkMultiConnRead(b *testing.B) {
	needBins(b, "qemu-nbd")
	url := startQemuNBD(b, false, "-f", "raw", "-r", benchImage(b))
	m, err := DialMulti(context.Background(), url, ClientOptions{}, 4)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const chunk, inFlight = 4 << 20, 16
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for w := range inFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, chunk)
				for off := int64(w) * chunk; off < benchSize; off += inFlight * chunk {
					if _, err := m.ReadAtContext(context.Background(), buf, off); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}
