// Hostile upstream behaviours for modgate's hardening tests: malicious
// module zips, broken or lying HTTP responses, slow bodies, bad .info files,
// and a checksum database that serves garbage, notes signed by an unknown
// key, or tiles that do not hash to the signed tree.
//
// Enabled per module version with /_control/hostile (see README.md).

package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
)

// hostileSpec is one enabled behaviour.
type hostileSpec struct {
	what  string
	chunk int // trickle: bytes per write
	ms    int // trickle: pause between writes
}

// hostileKinds maps each behaviour to the request it applies to.
var hostileKinds = map[string]string{
	"zip-outside":      "zip",
	"zip-abs":          "zip",
	"zip-dotdot":       "zip",
	"zip-casedup":      "zip",
	"zip-gomod":        "zip",
	"zip-bomb":         "zip",
	"zip-huge-content": "zip",
	"truncate":         "zip",
	"endless":          "zip",
	"cl-huge":          "zip",
	"cl-short":         "zip",
	"trickle":          "zip",
	"info-garbage":     "info",
	"info-other":       "info",
	"lookup-garbage":   "lookup",
	"lookup-badkey":    "lookup",
	"tiles":            "tile",
}

func (u *upstream) hostileFor(path, version, kind string) (hostileSpec, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	h, ok := u.hostile[path+"@"+version]
	if !ok || hostileKinds[h.what] != kind {
		return hostileSpec{}, false
	}
	return h, true
}

// serveHostileFile answers a GET for kind of e per its hostile spec, if any.
func (u *upstream) serveHostileFile(w http.ResponseWriter, r *http.Request, e *entry, kind string, data []byte) bool {
	h, ok := u.hostileFor(e.Path, e.Version, kind)
	if !ok || r.Method != http.MethodGet {
		return false
	}
	log.Printf("hostile %s for %s@%s.%s", h.what, e.Path, e.Version, kind)
	switch h.what {
	case "info-garbage":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"Version": "v1.0`))
	case "info-other":
		w.Header().Set("Content-Type", "application/json")
		w.Write(makeInfo("v9.9.9"))
	case "truncate":
		// Declare the whole zip, send half, hang up.
		rawResponse(w, len(data), data[:len(data)/2])
	case "cl-short":
		// Declare 100 bytes fewer than sent: a reader that trusts the
		// header gets a truncated zip.
		rawResponse(w, len(data)-100, data)
	case "cl-huge":
		w.Header().Set("Content-Length", fmt.Sprint(int64(1)<<40))
		endless(w, e)
	case "endless":
		endless(w, e) // chunked: no length to refuse up front
	case "trickle":
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		chunk, pause := h.chunk, time.Duration(h.ms)*time.Millisecond
		if chunk <= 0 {
			chunk = 1
		}
		for off := 0; off < len(data); off += chunk {
			end := off + chunk
			if end > len(data) {
				end = len(data)
			}
			if _, err := w.Write(data[off:end]); err != nil {
				log.Printf("trickle %s@%s: client went away after %d bytes", e.Path, e.Version, off)
				return true
			}
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			select {
			case <-time.After(pause):
			case <-r.Context().Done():
				log.Printf("trickle %s@%s: client went away after %d bytes", e.Path, e.Version, end)
				return true
			}
		}
	default: // zip-*
		z, err := hostileZip(e.Path, e.Version, h.what, data)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return true
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Length", fmt.Sprint(len(z)))
		w.Write(z)
	}
	return true
}

// rawResponse writes a 200 with the given Content-Length and body bytes on
// the raw connection, then closes it (net/http would refuse the lie).
func rawResponse(w http.ResponseWriter, contentLength int, body []byte) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, bw, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", contentLength)
	bw.Write(body)
	bw.Flush()
}

// endless writes zeros until the client goes away, and logs how many.
func endless(w http.ResponseWriter, e *entry) {
	w.Header().Set("Content-Type", "application/zip")
	block := make([]byte, 64<<10)
	var n int64
	for {
		m, err := w.Write(block)
		n += int64(m)
		if err != nil {
			break
		}
	}
	log.Printf("endless %s@%s: client stopped reading after %d bytes", e.Path, e.Version, n)
}

// hostileZip rewrites an honest module zip into a malicious one.
func hostileZip(path, version, what string, data []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	prefix := path + "@" + version + "/"
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, content []byte) error {
		fw, err := zw.Create(name)
		if err != nil {
			return err
		}
		_, err = fw.Write(content)
		return err
	}
	firstFile, hadGoMod := "", false
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		content, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if f.Name == prefix+"go.mod" {
			hadGoMod = true
		}
		if what == "zip-gomod" && f.Name == prefix+"go.mod" {
			content = append(content, "// this go.mod differs from the .mod\n"...)
		}
		if firstFile == "" && f.Name != prefix+"go.mod" {
			firstFile = f.Name
		}
		if err := add(f.Name, content); err != nil {
			return nil, err
		}
	}
	switch what {
	case "zip-outside":
		err = add("example.com/elsewhere@v1.0.0/evil.go", []byte("package evil\n"))
	case "zip-abs":
		err = add("/etc/evil.go", []byte("package evil\n"))
	case "zip-dotdot":
		err = add(prefix+"../../evil.go", []byte("package evil\n"))
	case "zip-casedup":
		// Same directory, same name but for case: x/mod refuses the pair.
		err = add(prefix+strings.ToUpper(strings.TrimPrefix(firstFile, prefix)), []byte("package evil\n"))
	case "zip-gomod":
		if !hadGoMod {
			err = add(prefix+"go.mod", []byte("module "+path+"\n// differs\n"))
		}
	case "zip-huge-content":
		// Honestly declared, but more than a small configured limit.
		err = add(prefix+"big.txt", bytes.Repeat([]byte("a"), 4<<20))
	case "zip-bomb":
		// 64 MiB of zeros deflated to ~64 KiB, declared as 1 KiB.
		content := make([]byte, 64<<20)
		var comp bytes.Buffer
		fw, _ := flate.NewWriter(&comp, flate.BestCompression)
		fw.Write(content)
		fw.Close()
		var raw io.Writer
		raw, err = zw.CreateRaw(&zip.FileHeader{
			Name:               prefix + "bomb.txt",
			Method:             zip.Deflate,
			CRC32:              crc32.ChecksumIEEE(content),
			CompressedSize64:   uint64(comp.Len()),
			UncompressedSize64: 1 << 10,
		})
		if err == nil {
			_, err = raw.Write(comp.Bytes())
		}
	default:
		return nil, fmt.Errorf("unknown zip behaviour %q", what)
	}
	if err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// serveHostileSumdb answers a checksum database request per the hostile
// specs (lookups of one module version, or every tile), if any applies.
func (u *upstream) serveHostileSumdb(w http.ResponseWriter, r *http.Request, rest string) bool {
	var h hostileSpec
	switch {
	case strings.HasPrefix(rest, "/lookup/"):
		target := strings.TrimPrefix(rest, "/lookup/")
		i := strings.LastIndex(target, "@")
		if i < 0 {
			return false
		}
		p, err1 := module.UnescapePath(target[:i])
		v, err2 := module.UnescapeVersion(target[i+1:])
		if err1 != nil || err2 != nil {
			return false
		}
		var ok bool
		if h, ok = u.hostileFor(p, v, "lookup"); !ok {
			return false
		}
	case strings.HasPrefix(rest, "/tile/"):
		u.mu.Lock()
		on := u.hostileTiles
		u.mu.Unlock()
		if !on {
			return false
		}
		h.what = "tiles"
	default:
		return false
	}
	log.Printf("hostile %s for sumdb %s", h.what, rest)
	if h.what == "lookup-garbage" {
		w.Write([]byte("this is not a lookup response\n"))
		return true
	}
	// Start from the honest answer.
	rec := httptest.NewRecorder()
	r2 := r.Clone(r.Context())
	r2.URL.Path = rest
	u.sumdbHandler().ServeHTTP(rec, r2)
	body := rec.Body.Bytes()
	if rec.Code != http.StatusOK || len(body) == 0 {
		w.WriteHeader(rec.Code)
		w.Write(body)
		return true
	}
	switch h.what {
	case "tiles":
		body = append([]byte(nil), body...)
		body[0] ^= 0xff
	case "lookup-badkey":
		// Re-sign the tree note with a fresh key of the same name.
		i := bytes.Index(body, []byte("go.sum database tree\n"))
		j := -1
		if i >= 0 {
			j = bytes.Index(body[i:], []byte("\n\n"))
		}
		if j < 0 {
			http.Error(w, "cannot split lookup", http.StatusInternalServerError)
			return true
		}
		skey, _, err := note.GenerateKey(rand.Reader, u.name)
		if err == nil {
			var signer note.Signer
			if signer, err = note.NewSigner(skey); err == nil {
				var signed []byte
				signed, err = note.Sign(&note.Note{Text: string(body[i : i+j+1])}, signer)
				body = append(append([]byte(nil), body[:i]...), signed...)
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return true
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(body)
	return true
}
