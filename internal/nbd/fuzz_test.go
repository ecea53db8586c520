package nbd

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Transcript builders for fuzz seeds.

func greeting(flags uint16) []byte {
	b := binary.BigEndian.AppendUint64(nil, nbdMagic)
	b = binary.BigEndian.AppendUint64(b, optMagic)
	return binary.BigEndian.AppendUint16(b, flags)
}

func optReply(opt, typ uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, optReplyMagic)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func chunkBytes(handle uint64, flags, typ uint16, payload ...[]byte) []byte {
	var b []byte
	for _, p := range chunk(handle, flags, typ, payload...) {
		b = append(b, p...)
	}
	return b
}

func simpleBytes(handle uint64, code uint32, data []byte) []byte {
	b := make([]byte, simpleReplyLen)
	encodeSimpleReply(b, code, handle)
	return append(b, data...)
}

func goReplies(size uint64, flags TransmissionFlags) []byte {
	exp := binary.BigEndian.AppendUint16(nil, infoExport)
	exp = binary.BigEndian.AppendUint64(exp, size)
	exp = binary.BigEndian.AppendUint16(exp, uint16(flags))
	bs := binary.BigEndian.AppendUint16(nil, infoBlockSize)
	bs = append(append(append(bs, be32(1)...), be32(4096)...), be32(MaxRequestSize)...)
	b := append(optReply(optGo, repInfo, exp), optReply(optGo, repInfo, bs)...)
	return append(b, optReply(optGo, repAck, nil)...)
}

// structuredTranscript answers the requests fuzzClient sends, with
// structured replies.
func structuredTranscript() []byte {
	b := greeting(hsFlagFixedNewstyle | hsFlagNoZeroes)
	b = append(b, optReply(optStructuredReply, repAck, nil)...)
	b = append(b, optReply(optSetMetaContext, repMetaContext, append(be32(1), ContextBaseAllocation...))...)
	b = append(b, optReply(optSetMetaContext, repAck, nil)...)
	b = append(b, goReplies(1<<20, FlagHasFlags|FlagSendFlush)...)
	b = append(b, chunkBytes(1, 0, chunkOffsetData, be64(0), make([]byte, 32<<10))...)
	b = append(b, chunkBytes(1, replyFlagDone, chunkOffsetHole, be64(32<<10), be32(32<<10))...)
	b = append(b, chunkBytes(2, replyFlagDone, chunkBlockStatus, encodeBlockStatus(1, []descriptor{{4096, 3}, {1<<20 - 4096, 0}}))...)
	b = append(b, chunkBytes(3, replyFlagDone, chunkErrorOffset, encodeErrorChunk(codeEIO, "bad sector"), be64(4096))...)
	return append(b, simpleBytes(4, 0, nil)...)
}

func simpleTranscript() []byte {
	b := greeting(hsFlagFixedNewstyle)
	b = append(b, optReply(optStructuredReply, repErrUnsup, nil)...)
	b = append(b, optReply(optGo, repErrUnsup, []byte("old server"))...)
	exp := binary.BigEndian.AppendUint64(nil, 1<<20)
	b = append(append(b, binary.BigEndian.AppendUint16(exp, uint16(FlagHasFlags))...), make([]byte, 124)...)
	b = append(b, simpleBytes(1, 0, make([]byte, 64<<10))...)
	return append(b, simpleBytes(2, codeEINVAL, nil)...)
}

// fuzzClient drives a client over conn the way the seeds expect: four
// requests (handles 1-4) are sent before the reader starts, so replies in
// the stream always find their request, then the public API runs.
func fuzzClient(ctx context.Context, conn net.Conn) {
	opts := ClientOptions{MetaContexts: []string{ContextBaseAllocation}, manualReader: true}
	c, err := NewClientConn(ctx, conn, "disk", opts)
	if err != nil {
		return
	}
	defer c.Close()
	for _, cl := range pipelinedCalls(ctx, c) {
		if c.wait(ctx, cl) == nil && cl.typ == cmdBlockStatus {
			for _, descs := range cl.status {
				_, _ = appendDescriptors(nil, 0, int64(cl.length), descs)
			}
		}
	}
	_, _ = c.ReadAtContext(ctx, make([]byte, 64<<10), 0)
	_, _ = c.BlockStatus(ctx, ContextBaseAllocation, 0, min(c.Size(), 1<<20))
}

// pipelinedCalls sends READ, BLOCK_STATUS, READ and FLUSH (handles 1-4)
// and then starts the reader.
func pipelinedCalls(ctx context.Context, c *Client) []*call {
	size := uint64(c.Size())
	reqs := []struct {
		req request
		buf []byte
	}{
		{request{typ: cmdRead, length: uint32(min(size, 64<<10))}, make([]byte, min(size, 64<<10))},
		{request{typ: cmdBlockStatus, length: uint32(min(size, 1<<20))}, nil},
		{request{typ: cmdRead, offset: 4096, length: 4096}, make([]byte, 4096)},
		{request{typ: cmdFlush}, nil},
	}
	var calls []*call
	for _, r := range reqs {
		if cl, err := c.start(ctx, r.req, r.buf, nil); err == nil {
			calls = append(calls, cl)
		}
	}
	go c.readLoop()
	return calls
}

func FuzzClientReplies(f *testing.F) {
	f.Add(structuredTranscript())
	f.Add(simpleTranscript())
	f.Add(append(greeting(0), make([]byte, 134)...))
	f.Add(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, nbdMagic), oldstyleMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		cli, srv := net.Pipe()
		go func() { _, _ = io.Copy(io.Discard, srv) }()
		go func() {
			_, _ = srv.Write(data)
			_ = srv.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		fuzzClient(ctx, cli)
		if ctx.Err() != nil {
			t.Fatal("client hung on a finite reply stream")
		}
	})
}

// Client-side transcript builders for the server fuzzer.

func clientOpt(opt uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, optMagic)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func reqBytes(r request, payload []byte) []byte {
	b := make([]byte, requestHeaderLen)
	r.encode(b)
	return append(b, payload...)
}

func clientTranscript(export string, structured bool) []byte {
	b := be32(clientFlagFixedNewstyle | clientFlagNoZeroes)
	b = append(b, clientOpt(optList, nil)...)
	if structured {
		b = append(b, clientOpt(optStructuredReply, nil)...)
		b = append(b, clientOpt(optSetMetaContext, encodeNameAndQueries(export, []string{ContextBaseAllocation}))...)
	}
	goData := append(append(be32(uint32(len(export))), export...), 0, 1, 0, 3)
	b = append(b, clientOpt(optGo, goData)...)
	b = append(b, reqBytes(request{typ: cmdRead, handle: 1, length: 8192}, nil)...)
	b = append(b, reqBytes(request{typ: cmdWrite, handle: 2, offset: 512, length: 4}, []byte("abcd"))...)
	b = append(b, reqBytes(request{typ: cmdBlockStatus, handle: 3, length: 1 << 20}, nil)...)
	b = append(b, reqBytes(request{typ: cmdWriteZeroes, handle: 4, length: 1 << 16}, nil)...)
	b = append(b, reqBytes(request{typ: cmdFlush, handle: 5}, nil)...)
	return append(b, reqBytes(request{typ: cmdDisc, handle: 6}, nil)...)
}

func FuzzServerRequests(f *testing.F) {
	f.Add(clientTranscript("ro", true))
	f.Add(clientTranscript("rw", true))
	f.Add(clientTranscript("rw", false))
	f.Add(append(be32(1), clientOpt(optExportName, []byte("rw"))...))
	f.Add(append(be32(1), clientOpt(optStartTLS, nil)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		ro := &memDisk{b: make([]byte, 1<<20)}
		rw := &memDisk{b: make([]byte, 1<<20)}
		s, err := NewServer(ServerOptions{MaxBufferedBytes: 32 << 20},
			Export{Name: "ro", Size: 1 << 20, ReaderAt: ro, Allocation: ro.allocation},
			Export{Name: "rw", Size: 1 << 20, ReaderAt: rw, WriterAt: rw})
		if err != nil {
			t.Fatal(err)
		}
		cli, srv := net.Pipe()
		done := make(chan struct{})
		go func() {
			s.serveConn(context.Background(), srv)
			close(done)
		}()
		go func() { _, _ = io.Copy(io.Discard, cli) }()
		_, _ = cli.Write(data)
		_ = cli.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("server hung on a finite request stream")
		}
	})
}

func FuzzParseChunkPayloads(f *testing.F) {
	f.Add(uint16(chunkBlockStatus), encodeBlockStatus(1, []descriptor{{512, 1}}))
	f.Add(uint16(chunkError), encodeErrorChunk(codeEIO, "x"))
	f.Add(uint16(chunkErrorOffset), append(encodeErrorChunk(codeEIO, "x"), be64(9)...))
	f.Fuzz(func(t *testing.T, typ uint16, data []byte) {
		if typ == chunkBlockStatus {
			id, descs, err := parseBlockStatus(data)
			if err == nil {
				back := encodeBlockStatus(id, descs)
				if string(back) != string(data) {
					t.Fatalf("block status round trip differs")
				}
			}
			return
		}
		ec, err := parseErrorChunk(typ, data)
		if err == nil && len(ec.message) > 4*len(data) {
			t.Fatal("message longer than payload")
		}
	})
}

func FuzzParseOptionData(f *testing.F) {
	f.Add(encodeNameAndQueries("disk", []string{ContextBaseAllocation, "qemu:dirty-bitmap:b"}))
	f.Add(append(append(be32(4), "disk"...), 0, 2, 0, 1, 0, 3))
	f.Add(append(binary.BigEndian.AppendUint16(nil, infoBlockSize), make([]byte, 12)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if name, qs, err := parseMetaRequest(data); err == nil {
			if string(encodeNameAndQueries(name, qs)) != string(data) {
				t.Fatal("meta request round trip differs")
			}
		}
		_, _, _ = parseInfoRequest(data)
		var info ExportInfo
		got := false
		if err := applyInfo(&info, data, &got); err == nil && info.MinBlockSize != 0 {
			if info.maxRequest() <= 0 || info.maxRequest() > MaxRequestSize+64<<10 {
				t.Fatalf("max request %d from %+v", info.maxRequest(), info)
			}
		}
	})
}

// TestFuzzSeeds checks that the structured client seed drives every
// reply path.
func TestFuzzSeeds(t *testing.T) {
	cli, srv := net.Pipe()
	go func() { _, _ = io.Copy(io.Discard, srv) }()
	go func() { _, _ = srv.Write(structuredTranscript()) }()
	defer srv.Close()
	ctx := testCtx(t)
	c, err := NewClientConn(ctx, cli, "disk", ClientOptions{MetaContexts: []string{ContextBaseAllocation}, manualReader: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	calls := pipelinedCalls(ctx, c)
	if len(calls) != 4 {
		t.Fatalf("%d calls sent", len(calls))
	}
	for _, cl := range calls {
		_ = c.wait(ctx, cl)
	}
	if calls[0].res != nil || calls[1].res != nil || calls[3].res != nil {
		t.Fatalf("results %v %v %v", calls[0].res, calls[1].res, calls[3].res)
	}
	if ext, _ := appendDescriptors(nil, 0, 1<<20, calls[1].status[1]); len(ext) != 2 || ext[0].Flags != 3 {
		t.Fatalf("block status %+v", ext)
	}
	var ne *Error
	if !errors.As(calls[2].res, &ne) || ne.Offset != 4096 || ne.Message != "bad sector" {
		t.Fatalf("error chunk: %v", calls[2].res)
	}
}

// handshakeOnly is the structured transcript up to the end of NBD_OPT_GO.
func handshakeOnly() []byte {
	b := greeting(hsFlagFixedNewstyle | hsFlagNoZeroes)
	b = append(b, optReply(optStructuredReply, repAck, nil)...)
	b = append(b, optReply(optSetMetaContext, repAck, nil)...)
	return append(b, goReplies(1<<20, FlagHasFlags)...)
}

// TestClientStalledChunk: a server that stops mid-chunk must not keep a
// cancelled caller beyond the grace period, and the connection is dropped.
func TestClientStalledChunk(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	go func() { _, _ = io.Copy(io.Discard, srv) }()
	go func() { _, _ = srv.Write(handshakeOnly()) }()
	c, err := NewClientConn(testCtx(t), cli, "disk", ClientOptions{MetaContexts: []string{ContextBaseAllocation}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		for c.InFlight() == 0 {
			time.Sleep(time.Millisecond)
		}
		hdr := chunkBytes(1, replyFlagDone, chunkOffsetData, be64(0), make([]byte, 4096))
		_, _ = srv.Write(hdr[:chunkHeaderLen+8+100]) // then stall
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.ReadAtContext(ctx, make([]byte, 4096), 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled read: %v", err)
	}
	if d := time.Since(start); d > abandonGrace+time.Second {
		t.Fatalf("cancelled read returned after %v", d)
	}
	if c.Err() == nil {
		t.Fatal("connection kept after a stalled transfer")
	}
}
