// Command refupstream is the reference upstream for modgate's tests: a Go
// module proxy (GOPROXY protocol) plus a Go checksum database built from
// the real golang.org/x/mod, on 127.0.0.1, with control endpoints that make
// it misbehave (tampered files, outages, a forked log).
//
// On start it prints, one per line:
//
//	URL http://127.0.0.1:PORT
//	VKEY <verifier key>
//	SUMDB <name>
//
// See README.md for the flags and the HTTP API.
package main

import (
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	name := flag.String("name", "refsum.test", "checksum database name")
	staticProxy := flag.String("static-proxy", "", "serve this GOPROXY-layout directory instead of the built-in modules")
	staticSumdb := flag.String("static-sumdb", "", "serve this checksum database directory (latest, lookup/, tile/) as static files")
	staticVkey := flag.String("static-vkey", "", "verifier key to print as VKEY when -static-sumdb is used")
	gen := flag.Int("gen", 0, "add N generated modules example.com/gen/mNNNN forming a dependency graph")
	genFiles := flag.Int("gen-files", 0, "with -gen: also add the graph example.com/genreal/mNNNN whose modules carry this many extra ~6 KB source files")
	big := flag.String("big", "", "comma-separated sizes in MiB: add example.com/big/mN v1.0.0 with a zip of about N MiB (N <= 500)")
	delay := flag.Duration("delay", 0, "hold every proxy and checksum-database answer this long (a distant upstream's round trip); /_control/delay?what=all changes it")
	flag.Parse()
	log.SetPrefix("refupstream: ")
	log.SetFlags(log.Ltime | log.Lmicroseconds)

	st := newStore()
	if *staticProxy != "" {
		if err := st.loadStatic(*staticProxy); err != nil {
			log.Fatalf("loading -static-proxy %s: %v", *staticProxy, err)
		}
	} else if err := st.loadBuiltin(); err != nil {
		log.Fatalf("building built-in modules: %v", err)
	}
	if *gen > 0 {
		if err := st.addGenGraph("example.com/gen", *gen, 0); err != nil {
			log.Fatalf("-gen: %v", err)
		}
		if *genFiles > 0 {
			if err := st.addGenGraph("example.com/genreal", *gen, *genFiles); err != nil {
				log.Fatalf("-gen-files: %v", err)
			}
		}
	}

	if *big != "" {
		if err := st.addBigModules(*big); err != nil {
			log.Fatalf("-big: %v", err)
		}
	}

	skey, vkey, err := note.GenerateKey(rand.Reader, *name)
	if err != nil {
		log.Fatal(err)
	}
	if *staticSumdb != "" && *staticVkey != "" {
		vkey = *staticVkey
	}

	u := newUpstream(st, *name, skey)
	u.staticSumdb = *staticSumdb
	if *delay < 0 {
		log.Fatalf("-delay must not be negative")
	}
	u.slow.delay["all"] = *delay

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "URL http://%s\nVKEY %s\nSUMDB %s\n", ln.Addr(), vkey, *name)
	os.Stdout.Sync()
	log.Printf("serving on http://%s, sumdb %s", ln.Addr(), *name)
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 30 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// ServeHTTP routes control, sumdb and proxy requests.
func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/_control/") {
		u.serveControl(w, r)
		return
	}
	u.count(r)
	// -delay: every proxy and sumdb answer waits, as behind a network round trip.
	if !u.slow.wait(r, "all") {
		return
	}
	sumPrefix := "/sumdb/" + u.name + "/"
	if strings.HasPrefix(p, "/sumdb/") {
		if u.misbehave(w, r, "sumdb") {
			return
		}
		if !strings.HasPrefix(p, sumPrefix) {
			http.NotFound(w, r)
			return
		}
		defer u.slow.enter("sumdb")()
		if !u.slow.wait(r, "sumdb") {
			return
		}
		u.serveSumdb(w, r, "/"+strings.TrimPrefix(p, sumPrefix))
		return
	}
	if u.misbehave(w, r, "proxy") {
		return
	}
	u.serveProxy(w, r)
}

// serveSumdb serves the checksum database; rest starts with "/".
func (u *upstream) serveSumdb(w http.ResponseWriter, r *http.Request, rest string) {
	if rest == "/supported" {
		w.Write([]byte("ok\n"))
		return
	}
	if u.staticSumdb != "" {
		clean := path.Clean(rest)
		if clean != rest || strings.Contains(clean, "..") {
			http.NotFound(w, r)
			return
		}
		file := filepath.Join(u.staticSumdb, filepath.FromSlash(clean))
		if _, err := os.Stat(file); err != nil {
			if data, ok := widerTile(u.staticSumdb, clean); ok {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(data)
				return
			}
		}
		http.ServeFile(w, r, file)
		return
	}
	if u.serveHostileSumdb(w, r, rest) {
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = rest
	u.sumdbHandler().ServeHTTP(w, r2)
}

// serveProxy implements the GOPROXY protocol.
func (u *upstream) serveProxy(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if strings.HasSuffix(p, "/@latest") {
		modPath, err := module.UnescapePath(strings.TrimSuffix(p, "/@latest"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		vs := u.store.versions(modPath)
		latest := ""
		for _, v := range vs { // prefer releases, then prereleases, then pseudo-versions
			if latest == "" || rank(v) > rank(latest) || (rank(v) == rank(latest) && semver.Compare(v, latest) > 0) {
				latest = v
			}
		}
		if latest == "" {
			http.Error(w, "not found: "+modPath+"@latest", http.StatusNotFound)
			return
		}
		u.serveFile(w, r, modPath, latest, "info")
		return
	}
	i := strings.Index(p, "/@v/")
	if i < 0 {
		http.NotFound(w, r)
		return
	}
	modPath, err := module.UnescapePath(p[:i])
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	file := p[i+len("/@v/"):]
	if file == "list" {
		vs := u.store.versions(modPath)
		if vs == nil {
			http.Error(w, "not found: "+modPath, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		for _, v := range vs {
			if !module.IsPseudoVersion(v) {
				fmt.Fprintln(w, v)
			}
		}
		return
	}
	ext := path.Ext(file)
	kind := strings.TrimPrefix(ext, ".")
	if kind != "info" && kind != "mod" && kind != "zip" {
		http.NotFound(w, r)
		return
	}
	version, err := module.UnescapeVersion(strings.TrimSuffix(file, ext))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	u.serveFile(w, r, modPath, version, kind)
}

// rank orders version kinds for @latest: release > prerelease > pseudo.
func rank(v string) int {
	switch {
	case module.IsPseudoVersion(v):
		return 0
	case semver.Prerelease(v) != "":
		return 1
	}
	return 2
}

func (u *upstream) serveFile(w http.ResponseWriter, r *http.Request, modPath, version, kind string) {
	defer u.slow.enter(kind)()
	if !u.slow.wait(r, kind) {
		return
	}
	e := u.store.get(modPath, version)
	if e == nil {
		http.Error(w, fmt.Sprintf("not found: %s@%s", modPath, version), http.StatusNotFound)
		return
	}
	data, err := e.data(kind)
	if err != nil {
		http.Error(w, fmt.Sprintf("not found: %s@%s.%s", modPath, version, kind), http.StatusNotFound)
		return
	}
	if u.serveHostileFile(w, r, e, kind, data) {
		return
	}
	data, err = u.maybeTamper(e, kind, data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	switch kind {
	case "info":
		w.Header().Set("Content-Type", "application/json")
	case "mod":
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	case "zip":
		w.Header().Set("Content-Type", "application/zip")
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(data)
}

func writeJSON(w http.ResponseWriter, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// widerTile answers a request for a partial hash tile missing from a
// static sumdb directory with the prefix of a wider copy of the same tile
// (the full tile or a wider partial one), exactly as a live server would
// have served it: hash tiles only grow at the end.
func widerTile(dir, rest string) ([]byte, bool) {
	t, err := tlog.ParseTilePath(strings.TrimPrefix(rest, "/"))
	if err != nil || t.L < 0 {
		return nil, false
	}
	for w := 1 << uint(t.H); w > t.W; w-- {
		wider := t
		wider.W = w
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(wider.Path())))
		if err == nil && len(data) >= t.W*tlog.HashSize {
			return data[:t.W*tlog.HashSize], true
		}
	}
	return nil, false
}
