package web

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// The benchmark's shoppers share the lab's two cores, so what they spend
// is taken from the server. Go's http.Client spends ~165 µs of CPU per
// request here (a reader and a writer goroutine per connection, channel
// hand-offs, header maps): more than the server spends on HTTP. A load
// generator such as wrk writes its requests by hand for that reason, and so
// does rawBuyer: real HTTP/1.1 over a real keep-alive TCP connection to
// the real server, one request at a time, answered with a Content-Length
// (which the API always sends) — nothing the server can tell apart from
// any other client. -hot.client=nethttp measures with http.Client instead.

// rawConn is one shopper's connection.
type rawConn struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
	buf  []byte
}

var errNoLength = errors.New("the answer has no Content-Length")

// do sends one request and reads its answer: the status, Retry-After in
// seconds (0 without one) and the body. A connection the server closed is
// dialled again once.
func (c *rawConn) do(req []byte) (status, retryAfter int, body []byte, err error) {
	for attempt := 0; ; attempt++ {
		if c.conn == nil {
			conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
			if err != nil {
				return 0, 0, nil, err
			}
			c.conn, c.br = conn, bufio.NewReaderSize(conn, 4096)
		}
		_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
		status, retryAfter, body, closeAfter, err := c.exchange(req)
		if err != nil || closeAfter {
			_ = c.conn.Close()
			c.conn = nil
		}
		if err != nil && attempt == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			continue // an idle connection the server had closed
		}
		return status, retryAfter, body, err
	}
}

func (c *rawConn) exchange(req []byte) (status, retryAfter int, body []byte, closeAfter bool, err error) {
	if _, err := c.conn.Write(req); err != nil {
		return 0, 0, nil, false, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, 0, nil, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, 0, nil, false, fmt.Errorf("not an HTTP status line: %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, 0, nil, false, fmt.Errorf("status line %q: %v", line, err)
	}
	length := -1
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, 0, nil, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.Atoi(string(value))
			if err != nil {
				return 0, 0, nil, false, fmt.Errorf("Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Retry-After")):
			retryAfter, _ = strconv.Atoi(string(value))
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = bytes.EqualFold(value, []byte("close"))
		}
	}
	if length < 0 {
		return status, retryAfter, nil, true, errNoLength
	}
	if cap(c.buf) < length {
		c.buf = make([]byte, length)
	}
	body = c.buf[:length]
	if _, err := io.ReadFull(c.br, body); err != nil {
		return 0, 0, nil, false, err
	}
	return status, retryAfter, body, closeAfter, nil
}

// newRawBuyer is newHTTPBuyer with a rawConn per client.
func newRawBuyer(base string, regions []string, n int, unexpected *atomic.Int64) (buy func(int, string) (string, float64, time.Duration, error), closeAll func()) {
	u, err := url.Parse(base)
	if err != nil {
		panic(err) // the benchmark's own server URL
	}
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = &rawConn{addr: u.Host}
	}
	closeAll = func() {
		for _, c := range conns {
			if c.conn != nil {
				_ = c.conn.Close()
			}
		}
	}
	head := "Host: " + u.Host + "\r\nAuthorization: Bearer " + testToken + "\r\nContent-Type: application/json\r\n"
	buy = func(c int, sku string) (string, float64, time.Duration, error) {
		body := `{"region":"` + regions[c%len(regions)] + `","qty":1}`
		req := "POST /api/stores/consensus/skus/" + sku + "/buy HTTP/1.1\r\n" + head +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		status, retryAfter, raw, err := conns[c].do([]byte(req))
		if err != nil {
			return "", 0, 0, err
		}
		return hotAnswer(status, retryAfter, raw, unexpected)
	}
	return buy, closeAll
}
