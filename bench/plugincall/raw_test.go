//go:build bench

package plugincall

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// An experiment, not a transport: what one Verify-sized request and answer
// would cost as length-prefixed protobuf frames on a unix socket under
// mutual TLS 1.3 (the key type and TLS settings of go-plugin's AutoMTLS),
// against gRPC on the same socket type. One connection per concurrent
// call, each served by one goroutine that reads and answers inline: the
// caller writes and reads on its own goroutine, so neither side hands a
// call to another goroutine. Each call sets and clears a deadline, as a
// transport that fails closed on a hung plugin would.

// The echo plugin serves the raw echo too when rawSockEnv names a socket
// path; rawCertEnv and rawKeyEnv carry the PEM pair both ends use.
const (
	rawSockEnv = "TWOFACTOR_BENCH_RAW_SOCK"
	rawCertEnv = "TWOFACTOR_BENCH_RAW_CERT"
	rawKeyEnv  = "TWOFACTOR_BENCH_RAW_KEY"
	rawMuxEnv  = "TWOFACTOR_BENCH_RAW_MUX"
)

// rawTLS is the mutual TLS configuration of both ends: one self-signed
// P-521 certificate that is its own CA, as go-plugin's generateCert makes.
func rawTLS(certPEM, keyPEM []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		return nil, fmt.Errorf("no certificate in PEM")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		RootCAs:      pool,
		ServerName:   "localhost",
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// rawCert makes the PEM certificate and key.
func rawCert() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// serveRawFromEnv starts the raw echo in the plugin if rawSockEnv is set.
func serveRawFromEnv() {
	path := os.Getenv(rawSockEnv)
	if path == "" {
		return
	}
	cfg, err := rawTLS([]byte(os.Getenv(rawCertEnv)), []byte(os.Getenv(rawKeyEnv)))
	if err != nil {
		panic(err)
	}
	mux := os.Getenv(rawMuxEnv) == "1"
	ln, err := tls.Listen("unix", path, cfg)
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRawConn(c, mux)
		}
	}()
}

// serveRawConn answers each frame on c with the same message, decoded and
// encoded again as a handler would: inline on the connection's goroutine,
// or with mux on a goroutine per call (a multiplexed connection must not
// let one slow call hold up the others), the answers written under a
// lock.
func serveRawConn(c net.Conn, mux bool) {
	defer c.Close()
	var mu sync.Mutex
	for {
		in := new(wrapperspb.BytesValue)
		id, err := readFrame(c, in)
		if err != nil {
			return
		}
		if !mux {
			if err := writeFrame(c, id, in); err != nil {
				return
			}
			continue
		}
		go func() {
			mu.Lock()
			defer mu.Unlock()
			if err := writeFrame(c, id, in); err != nil {
				c.Close()
			}
		}()
	}
}

// A frame is a 4-byte big-endian length, an 8-byte call id (which the
// multiplexed variant matches answers by) and the protobuf message.
const frameHeader = 12

// writeFrame sends m with call id in one write (one TLS record).
func writeFrame(c net.Conn, id uint64, m proto.Message) error {
	buf := make([]byte, frameHeader, frameHeader+proto.Size(m))
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	binary.BigEndian.PutUint64(buf[4:], id)
	_, err = c.Write(buf)
	return err
}

// readFrame reads one frame from c into m and returns its call id.
func readFrame(c net.Conn, m proto.Message) (uint64, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 8 || n > 1<<20 {
		return 0, fmt.Errorf("frame of %d bytes", n)
	}
	body := make([]byte, n-8)
	if _, err := io.ReadFull(c, body); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(hdr[4:]), proto.Unmarshal(body, m)
}

// startRawPlugin runs the echo plugin with the raw echo on a socket in a
// temporary directory and returns the socket, the TLS configuration to
// dial it with and the plugin's process id.
func startRawPlugin(b *testing.B, mux bool) (string, *tls.Config, int) {
	b.Helper()
	certPEM, keyPEM, err := rawCert()
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := rawTLS(certPEM, keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "raw.sock")
	env := []string{rawSockEnv + "=" + path, rawCertEnv + "=" + string(certPEM), rawKeyEnv + "=" + string(keyPEM)}
	if mux {
		env = append(env, rawMuxEnv+"=1")
	}
	_, pid := startEcho(b, true, env)
	return path, cfg, pid
}

// startRaw returns a raw echo call on a pool of connections (one per
// concurrent caller) and the plugin's process id.
func startRaw(b *testing.B, payload *wrapperspb.BytesValue) (func() error, int) {
	b.Helper()
	path, cfg, pid := startRawPlugin(b, false)
	var err error
	pool := make(chan net.Conn, callers)
	b.Cleanup(func() {
		close(pool)
		for c := range pool {
			c.Close()
		}
	})
	call := func() error {
		var c net.Conn
		select {
		case c = <-pool:
		default:
			if c, err = tls.Dial("unix", path, cfg); err != nil {
				return err
			}
		}
		if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			c.Close()
			return err
		}
		out := new(wrapperspb.BytesValue)
		if err := writeFrame(c, 0, payload); err != nil {
			c.Close()
			return err
		}
		if _, err := readFrame(c, out); err != nil {
			c.Close()
			return err
		}
		if len(out.Value) != len(payload.Value) {
			c.Close()
			return fmt.Errorf("raw echo returned %d bytes, want %d", len(out.Value), len(payload.Value))
		}
		if err := c.SetDeadline(time.Time{}); err != nil {
			c.Close()
			return err
		}
		select {
		case pool <- c:
		default:
			c.Close()
		}
		return nil
	}
	return call, pid
}

// startRawMux returns a raw echo call on one multiplexed connection, as
// gRPC multiplexes its calls: callers write under a lock and wait for a
// reader goroutine to hand them their answer, so a call crosses a
// goroutine hand-off on each side. No deadlines: the figure is a lower
// bound of such a design.
func startRawMux(b *testing.B, payload *wrapperspb.BytesValue) (func() error, int) {
	b.Helper()
	path, cfg, pid := startRawPlugin(b, true)
	c, err := tls.Dial("unix", path, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	var (
		mu      sync.Mutex // writes, next, waiting
		next    uint64
		waiting = map[uint64]chan *wrapperspb.BytesValue{}
	)
	go func() {
		for {
			out := new(wrapperspb.BytesValue)
			id, err := readFrame(c, out)
			if err != nil {
				return
			}
			mu.Lock()
			ch := waiting[id]
			delete(waiting, id)
			mu.Unlock()
			ch <- out
		}
	}()
	call := func() error {
		ch := make(chan *wrapperspb.BytesValue, 1)
		mu.Lock()
		next++
		id := next
		waiting[id] = ch
		err := writeFrame(c, id, payload)
		mu.Unlock()
		if err != nil {
			return err
		}
		if out := <-ch; len(out.Value) != len(payload.Value) {
			return fmt.Errorf("raw echo returned %d bytes, want %d", len(out.Value), len(payload.Value))
		}
		return nil
	}
	return call, pid
}
