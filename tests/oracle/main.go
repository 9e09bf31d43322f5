// Command oracle generates reference data with the real golang.org/x/mod so
// that modgate's Rust verifier can be cross-checked against it.
//
// It grows a checksum-database log with sumdb.TestServer, serves it through
// the real sumdb.Server HTTP handler (in-process, no network) and writes out
// what a client would see at each requested tree size: signed notes, tiles,
// records and lookups. It also writes module zips built with x/mod/zip and
// their dirhash h1 hashes. Everything is deterministic for a given -seed.
//
// Build (GOPATH mode, x/mod from /usr/share/gocode):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o oracle ./tests/oracle
//
// See README.md in this directory for the output layout.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	modzip "golang.org/x/mod/zip"
)

const tileHeight = 8 // sum.golang.org uses height 8

var (
	outDir  = flag.String("out", "", "output directory (created if missing)")
	sizesF  = flag.String("sizes", "1,255,256,257,1000", "ascending tree sizes; the largest is the log size")
	seed    = flag.Int64("seed", 1, "random seed (output is deterministic per seed)")
	numZips = flag.Int("zips", 3, "number of module zips to generate")
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("oracle: ")
	flag.Parse()
	if *outDir == "" {
		log.Fatal("-out is required")
	}
	sizes, err := parseSizes(*sizesF)
	if err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	rng := rand.New(rand.NewSource(*seed))

	// Signer/verifier keys, generated deterministically from the seed.
	skey, vkey, err := note.GenerateKey(rng, "oracle.test")
	if err != nil {
		log.Fatal(err)
	}
	write("skey", []byte(skey+"\n"))
	write("vkey", []byte(vkey+"\n"))
	var sizesText strings.Builder
	for _, s := range sizes {
		fmt.Fprintf(&sizesText, "%d\n", s)
	}
	write("sizes", []byte(sizesText.String()))

	// The "go.sum" source for the test server: records are generated
	// lines with random h1 hashes.
	hashRng := rand.New(rand.NewSource(*seed + 1))
	gosum := func(path, vers string) ([]byte, error) {
		return []byte(fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n",
			path, vers, randomH1(hashRng), path, vers, randomH1(hashRng))), nil
	}
	ops := sumdb.NewTestServer(skey, gosum)
	srv := sumdb.NewServer(ops)
	ctx := context.Background()

	var mods []module.Version // mods[id] is the module of record id
	written := make(map[string]bool)
	for _, size := range sizes {
		// Append records up to this size.
		for int64(len(mods)) < size {
			m := genModule(rng, len(mods))
			id, err := ops.Lookup(ctx, m)
			if err != nil {
				log.Fatal(err)
			}
			if id != int64(len(mods)) {
				log.Fatalf("duplicate module %v (id %d)", m, id)
			}
			mods = append(mods, m)
			recs, err := ops.ReadRecords(ctx, id, 1)
			if err != nil {
				log.Fatal(err)
			}
			write(filepath.Join("records", strconv.FormatInt(id, 10)), recs[0])
		}

		// The signed tree note, as /latest serves it.
		write(filepath.Join("note", strconv.FormatInt(size, 10)), get(srv, "/latest"))

		// Every tile a server of this size would serve. Full tiles never
		// change, so each path is written only once.
		for _, t := range tlog.NewTiles(tileHeight, 0, size) {
			tiles := []tlog.Tile{t}
			if t.L == 0 {
				d := t
				d.L = -1 // the matching record-data tile
				tiles = append(tiles, d)
			}
			for _, t := range tiles {
				p := t.Path()
				if written[p] {
					continue
				}
				written[p] = true
				write(p, get(srv, "/"+p))
			}
		}
	}

	// Lookups at the final size: first, last and a random sample.
	n := len(mods)
	ids := map[int]bool{0: true, n - 1: true}
	for i := 0; i < 50 && i < n; i++ {
		ids[rng.Intn(n)] = true
	}
	for id := range ids {
		m := mods[id]
		ep, err1 := module.EscapePath(m.Path)
		ev, err2 := module.EscapeVersion(m.Version)
		if err1 != nil || err2 != nil {
			log.Fatalf("escape %v: %v %v", m, err1, err2)
		}
		write(filepath.Join("lookup", ep+"@"+ev), get(srv, "/lookup/"+ep+"@"+ev))
	}

	// Module zips.
	zipRng := rand.New(rand.NewSource(*seed + 2))
	for i := 0; i < *numZips; i++ {
		genZip(zipRng, i)
	}
	fmt.Fprintf(os.Stderr, "oracle: %d records, %d tiles, %d zips in %v\n",
		n, len(written), *numZips, time.Since(start).Round(time.Millisecond))
}

func parseSizes(s string) ([]int64, error) {
	var sizes []int64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		if len(sizes) > 0 && v <= sizes[len(sizes)-1] {
			return nil, fmt.Errorf("sizes must be strictly ascending: %s", s)
		}
		sizes = append(sizes, v)
	}
	return sizes, nil
}

// get serves path through the real sumdb HTTP handler and returns the body.
func get(h http.Handler, path string) []byte {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	if w.Code != http.StatusOK {
		log.Fatalf("GET %s: %d %s", path, w.Code, w.Body.String())
	}
	return w.Body.Bytes()
}

// write writes data to rel (slash-separated) under -out, creating directories.
func write(rel string, data []byte) {
	p := filepath.Join(*outDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		log.Fatal(err)
	}
	if err := ioutil.WriteFile(p, data, 0o666); err != nil {
		log.Fatal(err)
	}
}

func randomH1(rng *rand.Rand) string {
	var b [32]byte
	rng.Read(b[:])
	// Same format dirhash.Hash1 produces.
	return "h1:" + base64.StdEncoding.EncodeToString(b[:])
}

// genModule returns a distinct module version for record i, mixing plain
// paths, upper-case paths (escaped as !x), /vN suffixes, pseudo-versions,
// +incompatible and upper-case pre-release versions.
func genModule(rng *rand.Rand, i int) module.Version {
	minor, patch := rng.Intn(20), rng.Intn(100)
	switch rng.Intn(6) {
	case 0:
		return module.Version{Path: fmt.Sprintf("example.com/m%d", i), Version: fmt.Sprintf("v1.%d.%d", minor, patch)}
	case 1:
		return module.Version{Path: fmt.Sprintf("github.com/User%d/Repo", i), Version: fmt.Sprintf("v0.%d.%d", minor, patch)}
	case 2:
		return module.Version{Path: fmt.Sprintf("example.com/m%d/v2", i), Version: fmt.Sprintf("v2.%d.%d", minor, patch)}
	case 3:
		return module.Version{Path: fmt.Sprintf("golang.org/x/tool%d", i),
			Version: fmt.Sprintf("v0.0.0-2019%02d%02d%06d-%012x", 1+minor%12, 1+patch%28, rng.Intn(240000), rng.Int63()&0xffffffffffff)}
	case 4:
		return module.Version{Path: fmt.Sprintf("gopkg.in/Pkg%d.v3", i), Version: fmt.Sprintf("v3.%d.%d+incompatible", minor, patch)}
	default:
		return module.Version{Path: fmt.Sprintf("example.com/ABC/m%d/v5", i), Version: fmt.Sprintf("v5.0.0-RC.%d", patch)}
	}
}

// memFile is an in-memory regular file for zip.Create.
type memFile struct {
	path string
	data []byte
}

func (f memFile) Path() string                 { return f.path }
func (f memFile) Lstat() (os.FileInfo, error)  { return memInfo{f}, nil }
func (f memFile) Open() (io.ReadCloser, error) { return ioutil.NopCloser(bytes.NewReader(f.data)), nil }

type memInfo struct{ f memFile }

func (i memInfo) Name() string       { return filepath.Base(i.f.path) }
func (i memInfo) Size() int64        { return int64(len(i.f.data)) }
func (i memInfo) Mode() os.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() interface{}   { return nil }

// genZip writes zips/<i>.{zip,mod,h1,mod.h1,version} for a generated module.
func genZip(rng *rand.Rand, i int) {
	m := module.Version{Path: fmt.Sprintf("example.com/Zip%d/Mod", i), Version: fmt.Sprintf("v1.%d.0", i)}
	if i%2 == 1 {
		m = module.Version{Path: fmt.Sprintf("github.com/Org%d/Proj/v2", i), Version: fmt.Sprintf("v2.0.%d-Beta", i)}
	}
	gomod := []byte(fmt.Sprintf("module %s\n\ngo 1.19\n", m.Path))
	files := []memFile{
		{"go.mod", gomod},
		{"LICENSE", []byte("Copyright (c) oracle. All rights reserved.\n")},
	}
	dirs := []string{""}
	for d := 0; d < 1+rng.Intn(6); d++ {
		parent := dirs[rng.Intn(len(dirs))]
		name := fmt.Sprintf("dir%d", d)
		if rng.Intn(2) == 0 {
			name = fmt.Sprintf("Pkg%d", d)
		}
		dirs = append(dirs, parent+name+"/")
	}
	nfiles := 3 + rng.Intn(30)
	for j := 0; j < nfiles; j++ {
		dir := dirs[rng.Intn(len(dirs))]
		var name string
		var data []byte
		switch k := rng.Intn(10); {
		case k == 0: // empty file
			name = fmt.Sprintf("empty%d", j)
		case k < 5: // Go-ish text, compresses well
			name = fmt.Sprintf("f%d.go", j)
			var b strings.Builder
			fmt.Fprintf(&b, "package p%d\n\n", j)
			for n := rng.Intn(400); n > 0; n-- {
				fmt.Fprintf(&b, "var V%d = %d // Ünïcode %x\n", n, rng.Int(), rng.Int63())
			}
			data = []byte(b.String())
		default: // random binary
			name = fmt.Sprintf("File%d.bin", j)
			data = make([]byte, rng.Intn(20000))
			rng.Read(data)
		}
		files = append(files, memFile{dir + name, data})
	}
	if i%3 == 0 { // a 1 MiB file
		big := make([]byte, 1<<20)
		rng.Read(big)
		files = append(files, memFile{dirs[rng.Intn(len(dirs))] + "Big.dat", big})
	}
	rest := files[2:] // zip entry order: go.mod, LICENSE, then shuffled
	rng.Shuffle(len(rest), func(a, b int) { rest[a], rest[b] = rest[b], rest[a] })
	zfiles := make([]modzip.File, len(files))
	for j, f := range files {
		zfiles[j] = f
	}

	var buf bytes.Buffer
	if err := modzip.Create(&buf, m, zfiles); err != nil {
		log.Fatalf("zip.Create %v: %v", m, err)
	}
	base := filepath.Join("zips", strconv.Itoa(i))
	write(base+".zip", buf.Bytes())
	write(base+".mod", gomod)
	write(base+".version", []byte(m.Path+" "+m.Version+"\n"))

	h, err := dirhash.HashZip(filepath.Join(*outDir, base+".zip"), dirhash.Hash1)
	if err != nil {
		log.Fatal(err)
	}
	write(base+".h1", []byte(h+"\n"))
	mh, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return ioutil.NopCloser(bytes.NewReader(gomod)), nil
	})
	if err != nil {
		log.Fatal(err)
	}
	write(base+".mod.h1", []byte(mh+"\n"))
}
