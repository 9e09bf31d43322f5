// Misbehaviour state and the /_control/ API: tampering, outages, forking
// the checksum database log, hit counters and runtime additions.

package main

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/tlog"
)

// upstream is the whole server state.
type upstream struct {
	store       *store
	name        string // sumdb name
	skey        string // signer key
	staticSumdb string // if set, serve this directory as the sumdb

	mu       sync.Mutex
	honest   *sumdb.TestServer // the original log
	current  *sumdb.TestServer // honest or a fork
	handler  *sumdb.Server     // serves current
	forks    int               // number of forks made so far
	tampered map[string]bool   // "path@version kind"
	down     map[string]string // "proxy"/"sumdb" -> "503"/"close"/"hang"
	counters map[string]uint64 // request path -> hits

	hostile      map[string]hostileSpec // "path@version" -> behaviour (hostile.go)
	hostileTiles bool                   // corrupt every tile

	slow *slow // delays and concurrency counts (delay.go)
}

func newUpstream(st *store, name, skey string) *upstream {
	u := &upstream{
		store:    st,
		name:     name,
		skey:     skey,
		tampered: map[string]bool{},
		down:     map[string]string{},
		counters: map[string]uint64{},
		hostile:  map[string]hostileSpec{},
		slow:     newSlow(),
	}
	u.honest = sumdb.NewTestServer(skey, u.gosum)
	u.current = u.honest
	u.handler = sumdb.NewServer(u.honest)
	return u
}

// gosum returns the honest go.sum lines for the TestServer.
// Unknown modules are reported as not found (HTTP 404).
func (u *upstream) gosum(path, version string) ([]byte, error) {
	e := u.store.get(path, version)
	if e == nil {
		return nil, os.ErrNotExist
	}
	return e.goSumLines()
}

func (u *upstream) sumdbHandler() *sumdb.Server {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.handler
}

// count records a hit for the request path and logs the request.
func (u *upstream) count(r *http.Request) {
	u.mu.Lock()
	u.counters[r.URL.Path]++
	u.mu.Unlock()
	log.Printf("%s %s", r.Method, r.URL.Path)
}

// misbehave applies an outage for role ("proxy" or "sumdb") and reports
// whether the request has been dealt with.
func (u *upstream) misbehave(w http.ResponseWriter, r *http.Request, role string) bool {
	u.mu.Lock()
	mode := u.down[role]
	u.mu.Unlock()
	switch mode {
	case "":
		return false
	case "hang":
		select {
		case <-time.After(60 * time.Second):
		case <-r.Context().Done():
			return true
		}
		http.Error(w, "hung for 60s", http.StatusServiceUnavailable)
	case "close":
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	default:
		http.Error(w, "service unavailable (refupstream down)", http.StatusServiceUnavailable)
	}
	return true
}

func tamperKey(path, version, kind string) string { return path + "@" + version + " " + kind }

// maybeTamper returns the bytes to serve for kind of e.
func (u *upstream) maybeTamper(e *entry, kind string, data []byte) ([]byte, error) {
	u.mu.Lock()
	t := u.tampered[tamperKey(e.Path, e.Version, kind)]
	u.mu.Unlock()
	if !t {
		return data, nil
	}
	switch kind {
	case "mod":
		out := append([]byte(nil), data...)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		return append(out, "// tampered by refupstream\n"...), nil
	case "zip":
		return tamperZip(e.Path, e.Version, data)
	}
	return data, nil
}

// tamperZip copies a module zip and adds one file under the module
// prefix, giving a valid module zip with a different hash.
func tamperZip(path, version string, data []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(w, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	w, err := zw.Create(path + "@" + version + "/tampered.txt")
	if err != nil {
		return nil, err
	}
	w.Write([]byte("this file was injected by refupstream\n"))
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// treeSize returns the size of the signed tree of ts.
func treeSize(ts *sumdb.TestServer) (int64, error) {
	signed, err := ts.Signed(context.Background())
	if err != nil {
		return 0, err
	}
	// The note text is the tree; the signature lines follow a blank line.
	text := string(signed)
	if i := strings.Index(text, "\n\n"); i >= 0 {
		text = text[:i+1]
	}
	tree, err := tlog.ParseTree([]byte(text))
	if err != nil {
		return 0, err
	}
	return tree.N, nil
}

// fork replaces the checksum database with a different log signed by the
// same key: one marker record first, then every record of the current log
// (so the new tree is larger than, and inconsistent with, the old one).
func (u *upstream) fork() error {
	u.mu.Lock()
	old := u.current
	u.forks++
	n := u.forks
	u.mu.Unlock()

	size, err := treeSize(old)
	if err != nil {
		return err
	}
	records, err := old.ReadRecords(context.Background(), 0, size)
	if err != nil {
		return err
	}
	markerPath := "example.com/refupstream-fork-marker"
	markerVersion := fmt.Sprintf("v0.0.%d", n)
	gosum := func(path, version string) ([]byte, error) {
		if path == markerPath && version == markerVersion {
			return []byte(fmt.Sprintf("%s %s h1:%s\n", path, version, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")), nil
		}
		return u.gosum(path, version)
	}
	ts := sumdb.NewTestServer(u.skey, gosum)
	ctx := context.Background()
	if _, err := ts.Lookup(ctx, module.Version{Path: markerPath, Version: markerVersion}); err != nil {
		return err
	}
	for _, rec := range records {
		line := string(rec)
		if i := strings.Index(line, "\n"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("cannot parse record %q", line)
		}
		m := module.Version{Path: f[0], Version: strings.TrimSuffix(f[1], "/go.mod")}
		if m.Path == markerPath {
			continue // marker of an earlier fork
		}
		if _, err := ts.Lookup(ctx, m); err != nil {
			return fmt.Errorf("replaying %v: %v", m, err)
		}
	}
	u.mu.Lock()
	u.current = ts
	u.handler = sumdb.NewServer(ts)
	u.mu.Unlock()
	newSize, _ := treeSize(ts)
	log.Printf("forked sumdb log: old size %d, new size %d", size, newSize)
	return nil
}

type moduleJSON struct {
	Path     string `json:"path"`
	Version  string `json:"version"`
	Sum      string `json:"sum"`
	GoModSum string `json:"gomodsum"`
}

// serveControl implements /_control/.
func (u *upstream) serveControl(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	what := q.Get("what")
	log.Printf("%s %s", r.Method, r.URL.RequestURI())
	switch strings.TrimPrefix(r.URL.Path, "/_control/") {
	case "modules":
		list := []moduleJSON{}
		for _, e := range u.store.all() {
			sum, gomodSum, err := e.sums()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			list = append(list, moduleJSON{e.Path, e.Version, sum, gomodSum})
		}
		writeJSON(w, list)
		return
	case "counters":
		u.mu.Lock()
		c := make(map[string]uint64, len(u.counters))
		for k, v := range u.counters {
			c[k] = v
		}
		u.mu.Unlock()
		writeJSON(w, c)
		return
	case "concurrency":
		c := map[string]uint64{}
		u.slow.counters(c)
		writeJSON(w, c)
		return
	case "counters/reset":
		u.mu.Lock()
		u.counters = map[string]uint64{}
		u.mu.Unlock()
		u.slow.resetMax()
	case "delay":
		if !u.slow.control(w, what, q.Get("ms")) {
			return
		}
	case "tamper":
		mod, vers := q.Get("module"), q.Get("version")
		if what != "zip" && what != "mod" {
			http.Error(w, "what must be zip or mod", http.StatusBadRequest)
			return
		}
		if u.store.get(mod, vers) == nil {
			http.Error(w, "unknown module version "+mod+"@"+vers, http.StatusBadRequest)
			return
		}
		u.mu.Lock()
		u.tampered[tamperKey(mod, vers, what)] = true
		u.mu.Unlock()
	case "down":
		mode := q.Get("mode")
		if mode == "" {
			mode = "503"
		}
		if mode != "503" && mode != "close" && mode != "hang" {
			http.Error(w, "mode must be 503, close or hang", http.StatusBadRequest)
			return
		}
		var roles []string
		switch what {
		case "proxy", "sumdb":
			roles = []string{what}
		case "all", "":
			roles = []string{"proxy", "sumdb"}
		default:
			http.Error(w, "what must be proxy, sumdb or all", http.StatusBadRequest)
			return
		}
		u.mu.Lock()
		for _, role := range roles {
			u.down[role] = mode
		}
		u.mu.Unlock()
	case "up":
		u.mu.Lock()
		u.down = map[string]string{}
		u.mu.Unlock()
	case "fork":
		if u.staticSumdb != "" {
			http.Error(w, "fork is not supported with -static-sumdb", http.StatusBadRequest)
			return
		}
		if err := u.fork(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	case "reset":
		u.mu.Lock()
		u.tampered = map[string]bool{}
		u.down = map[string]string{}
		u.current = u.honest
		u.handler = sumdb.NewServer(u.honest)
		u.hostile = map[string]hostileSpec{}
		u.hostileTiles = false
		u.mu.Unlock()
	case "hostile":
		mod, vers := q.Get("module"), q.Get("version")
		if _, ok := hostileKinds[what]; !ok && what != "off" {
			http.Error(w, "unknown hostile behaviour "+what, http.StatusBadRequest)
			return
		}
		if what == "tiles" {
			u.mu.Lock()
			u.hostileTiles = true
			u.mu.Unlock()
			break
		}
		if u.store.get(mod, vers) == nil {
			http.Error(w, "unknown module version "+mod+"@"+vers, http.StatusBadRequest)
			return
		}
		var chunk, ms int
		fmt.Sscan(q.Get("chunk"), &chunk)
		fmt.Sscan(q.Get("ms"), &ms)
		u.mu.Lock()
		if what == "off" {
			delete(u.hostile, mod+"@"+vers)
		} else {
			u.hostile[mod+"@"+vers] = hostileSpec{what: what, chunk: chunk, ms: ms}
		}
		u.mu.Unlock()
	case "add":
		mod, vers := q.Get("module"), q.Get("version")
		if u.store.get(mod, vers) != nil {
			http.Error(w, "already exists: "+mod+"@"+vers, http.StatusConflict)
			return
		}
		var size int
		fmt.Sscan(q.Get("size"), &size)
		if err := u.store.addRuntime(mod, vers, size); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// time=RFC3339: the .info Time (default: the fixed 2020 commit time).
		if t := q.Get("time"); t != "" {
			u.store.get(mod, vers).info = []byte(fmt.Sprintf("{\"Version\":%q,\"Time\":%q}\n", vers, t))
		}
	default:
		http.NotFound(w, r)
		return
	}
	w.Write([]byte("ok"))
}
