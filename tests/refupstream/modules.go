// Module store of the reference upstream: the built-in module table,
// generated modules (-gen, /_control/add), static GOPROXY-layout
// directories (-static-proxy), zip construction with x/mod/zip and the
// honest go.sum lines computed with x/mod/sumdb/dirhash.

package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	mathrand "math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// fixedTime is the commit time reported in every generated .info file.
var fixedTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// builtinSpec describes one built-in module version. Files maps the path
// inside the module (relative to the module root) to its content. GoMod is
// what the proxy serves as the .mod file; if the zip should contain a
// go.mod it must also be listed in Files.
type builtinSpec struct {
	Path    string
	Version string
	GoMod   string
	Files   map[string]string
}

// builtinModules is THE module table. Tests read it back through
// GET /_control/modules; keep README.md in sync when changing it.
var builtinModules = []builtinSpec{
	{
		Path:    "example.com/hello",
		Version: "v1.0.0",
		GoMod:   "module example.com/hello\n\ngo 1.16\n",
		Files: map[string]string{
			"hello.go": "// Package hello says hello.\npackage hello\n\n// Hello returns a greeting.\nfunc Hello() string { return \"hello, world v1.0.0\" }\n",
		},
	},
	{
		Path:    "example.com/hello",
		Version: "v1.1.0",
		GoMod:   "module example.com/hello\n\ngo 1.16\n",
		Files: map[string]string{
			"hello.go": "// Package hello says hello.\npackage hello\n\n// Hello returns a greeting.\nfunc Hello() string { return \"hello, world v1.1.0\" }\n\n// Version is the module version.\nconst Version = \"v1.1.0\"\n",
		},
	},
	{
		Path:    "example.com/Upper/Case",
		Version: "v1.0.0",
		GoMod:   "module example.com/Upper/Case\n\ngo 1.16\n",
		Files: map[string]string{
			"upcase.go": "// Package upcase lives at a module path with upper-case letters.\npackage upcase\n\n// Shout returns an upper-case greeting.\nfunc Shout() string { return \"HELLO\" }\n",
		},
	},
	{
		Path:    "example.com/multi/v2",
		Version: "v2.0.0",
		GoMod:   "module example.com/multi/v2\n\ngo 1.16\n",
		Files: map[string]string{
			"multi.go": "// Package multi has a major version suffix.\npackage multi\n\n// Major is the major version.\nconst Major = 2\n",
		},
	},
	{
		// +incompatible: no go.mod in the zip, the served .mod is synthesized.
		Path:    "example.com/incompat",
		Version: "v2.0.1+incompatible",
		GoMod:   "module example.com/incompat\n",
		Files: map[string]string{
			"incompat.go": "// Package incompat predates modules.\npackage incompat\n\n// Name returns the package name.\nfunc Name() string { return \"incompat\" }\n",
		},
	},
	{
		Path:    "example.com/pseudo",
		Version: "v0.0.0-20200101000000-abcdefabcdef",
		GoMod:   "module example.com/pseudo\n\ngo 1.16\n",
		Files: map[string]string{
			"pseudo.go": "// Package pseudo only has a pseudo-version.\npackage pseudo\n\n// Rev is the fake commit.\nconst Rev = \"abcdefabcdef\"\n",
		},
	},
	{
		Path:    "example.com/nested",
		Version: "v1.0.0",
		GoMod:   "module example.com/nested\n\ngo 1.16\n",
		Files: map[string]string{
			"LICENSE":                  "Copyright (c) 2020 The modgate test authors.\n\nPermission is granted to use this test fixture for any purpose.\n",
			"README.md":                "# nested\n\nA module with deep directories.\n",
			"nested.go":                "// Package nested is the root package.\npackage nested\n\nimport \"example.com/nested/a/b/c/d/e\"\n\n// Depth returns the depth of the deepest package.\nfunc Depth() int { return e.Depth }\n",
			"a/a.go":                   "// Package a is one level down.\npackage a\n\n// Level is the directory level.\nconst Level = 1\n",
			"a/b/b.go":                 "// Package b is two levels down.\npackage b\n\nimport \"example.com/nested/a\"\n\n// Level is the directory level.\nconst Level = a.Level + 1\n",
			"a/b/c/d/e/e.go":           "// Package e is five levels down.\npackage e\n\n// Depth is the directory level.\nconst Depth = 5\n",
			"a/b/c/d/e/testdata/x.txt": "test data\n",
			"internal/x/x.go":          "// Package x is internal.\npackage x\n\n// X is a value.\nconst X = \"x\"\n",
			"cmd/tool/main.go":         "// Command tool prints the depth.\npackage main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/nested\"\n\t\"example.com/nested/internal/x\"\n)\n\nfunc main() { fmt.Println(nested.Depth(), x.X) }\n",
		},
	},
	{
		Path:    "example.com/app",
		Version: "v1.0.0",
		GoMod:   "module example.com/app\n\ngo 1.16\n\nrequire (\n\texample.com/Upper/Case v1.0.0\n\texample.com/hello v1.1.0\n)\n",
		Files: map[string]string{
			"app.go": "// Package app depends on other modules.\npackage app\n\nimport (\n\tupcase \"example.com/Upper/Case\"\n\t\"example.com/hello\"\n)\n\n// Greeting combines its dependencies.\nfunc Greeting() string { return hello.Hello() + \" \" + upcase.Shout() }\n",
		},
	},	{
		// The real module that github.com/boltdb-go/bolt imitated (the
		// supply-chain gate's tests); a stand-in package, not bolt's code.
		Path:    "github.com/boltdb/bolt",
		Version: "v1.3.1",
		GoMod:   "module github.com/boltdb/bolt\n\ngo 1.16\n",
		Files: map[string]string{
			"go.mod":  "module github.com/boltdb/bolt\n\ngo 1.16\n",
			"bolt.go": "// Package bolt stands in for the real key/value store.\npackage bolt\n\n// Name names the module.\nconst Name = \"bolt\"\n",
		},
	},
	{
		// The 2021 typosquat of github.com/boltdb/bolt (harmless here): it
		// verifies against the checksum database like any honest module.
		Path:    "github.com/boltdb-go/bolt",
		Version: "v1.3.1",
		GoMod:   "module github.com/boltdb-go/bolt\n\ngo 1.16\n",
		Files: map[string]string{
			"go.mod":  "module github.com/boltdb-go/bolt\n\ngo 1.16\n",
			"bolt.go": "// Package bolt imitates github.com/boltdb/bolt.\npackage bolt\n\n// Name names the module.\nconst Name = \"bolt\"\n",
		},
	},
}

// entry is one module version. Generated entries keep their bytes in
// memory; static entries point at files and are read on demand.
type entry struct {
	Path    string
	Version string

	info, mod, zip          []byte
	infoFile, modFile, zipF string

	sumOnce  sync.Once
	sum      string // h1: of the honest zip ("" if no zip)
	gomodSum string // h1: of the honest go.mod ("" if no mod)
	sumErr   error
}

// data returns the honest bytes of kind "info", "mod" or "zip".
func (e *entry) data(kind string) ([]byte, error) {
	switch kind {
	case "info":
		if e.info != nil {
			return e.info, nil
		}
		if e.infoFile != "" {
			return ioutil.ReadFile(e.infoFile)
		}
		if e.mod != nil || e.modFile != "" {
			// Static directories without .info: synthesize one.
			return []byte(fmt.Sprintf("{\"Version\":%q,\"Time\":%q}\n", e.Version, fixedTime.Format(time.RFC3339))), nil
		}
	case "mod":
		if e.mod != nil {
			return e.mod, nil
		}
		if e.modFile != "" {
			return ioutil.ReadFile(e.modFile)
		}
	case "zip":
		if e.zip != nil {
			return e.zip, nil
		}
		if e.zipF != "" {
			return ioutil.ReadFile(e.zipF)
		}
	}
	return nil, os.ErrNotExist
}

// sums computes (once) the honest go.sum hashes.
func (e *entry) sums() (sum, gomodSum string, err error) {
	e.sumOnce.Do(func() {
		if z, err := e.data("zip"); err == nil {
			e.sum, e.sumErr = hashZipBytes(z)
			if e.sumErr != nil {
				return
			}
		}
		if m, err := e.data("mod"); err == nil {
			e.gomodSum, e.sumErr = hashGoMod(m)
		}
	})
	return e.sum, e.gomodSum, e.sumErr
}

// goSumLines returns the go.sum lines the honest checksum database records.
func (e *entry) goSumLines() ([]byte, error) {
	sum, gomodSum, err := e.sums()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if sum != "" {
		fmt.Fprintf(&b, "%s %s %s\n", e.Path, e.Version, sum)
	}
	if gomodSum != "" {
		fmt.Fprintf(&b, "%s %s/go.mod %s\n", e.Path, e.Version, gomodSum)
	}
	if b.Len() == 0 {
		return nil, os.ErrNotExist
	}
	return b.Bytes(), nil
}

// hashZipBytes is dirhash.HashZip for an in-memory zip.
func hashZipBytes(z []byte) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		return "", err
	}
	var names []string
	files := make(map[string]*zip.File)
	for _, f := range zr.File {
		names = append(names, f.Name)
		files[f.Name] = f
	}
	return dirhash.Hash1(names, func(name string) (io.ReadCloser, error) {
		f := files[name]
		if f == nil {
			return nil, fmt.Errorf("file %q not found in zip", name)
		}
		return f.Open()
	})
}

// hashGoMod is the go.sum "/go.mod" hash of a go.mod file's content.
func hashGoMod(mod []byte) (string, error) {
	return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return ioutil.NopCloser(bytes.NewReader(mod)), nil
	})
}

// memFile implements modzip.File for in-memory content.
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
func (i memInfo) ModTime() time.Time { return fixedTime }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() interface{}   { return nil }

// makeZip builds a module zip with x/mod/zip.Create from files (sorted by
// path so the output is deterministic).
func makeZip(path, version string, files map[string]string) ([]byte, error) {
	var names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var list []modzip.File
	for _, name := range names {
		list = append(list, memFile{name, []byte(files[name])})
	}
	var buf bytes.Buffer
	if err := modzip.Create(&buf, module.Version{Path: path, Version: version}, list); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func makeInfo(version string) []byte {
	return []byte(fmt.Sprintf("{\"Version\":%q,\"Time\":%q}\n", version, fixedTime.Format(time.RFC3339)))
}

// store holds every module version served by the proxy.
type store struct {
	mu   sync.RWMutex
	mods map[string]map[string]*entry // path -> version -> entry
}

func newStore() *store { return &store{mods: map[string]map[string]*entry{}} }

func (s *store) put(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mods[e.Path] == nil {
		s.mods[e.Path] = map[string]*entry{}
	}
	s.mods[e.Path][e.Version] = e
}

func (s *store) get(path, version string) *entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mods[path][version]
}

// versions returns all versions of path in semver order (nil if unknown).
func (s *store) versions(path string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	vs := s.mods[path]
	if vs == nil {
		return nil
	}
	list := []string{}
	for v := range vs {
		list = append(list, v)
	}
	sort.Slice(list, func(i, j int) bool { return semver.Compare(list[i], list[j]) < 0 })
	return list
}

// all returns every entry sorted by path then version.
func (s *store) all() []*entry {
	s.mu.RLock()
	var paths []string
	for p := range s.mods {
		paths = append(paths, p)
	}
	s.mu.RUnlock()
	sort.Strings(paths)
	var out []*entry
	for _, p := range paths {
		for _, v := range s.versions(p) {
			out = append(out, s.get(p, v))
		}
	}
	return out
}

// addGenerated creates a module version from a go.mod and files.
func (s *store) addGenerated(path, version, gomod string, files map[string]string) error {
	if err := module.Check(path, version); err != nil {
		return err
	}
	z, err := makeZip(path, version, files)
	if err != nil {
		return err
	}
	s.put(&entry{Path: path, Version: version, info: makeInfo(version), mod: []byte(gomod), zip: z})
	return nil
}

func (s *store) loadBuiltin() error {
	for _, b := range builtinModules {
		if err := s.addGenerated(b.Path, b.Version, b.GoMod, b.Files); err != nil {
			return fmt.Errorf("%s@%s: %v", b.Path, b.Version, err)
		}
	}
	return nil
}

// packageName derives a Go package name from a module path.
func packageName(path string) string {
	prefix, _, _ := module.SplitPathVersion(path)
	elem := prefix[strings.LastIndex(prefix, "/")+1:]
	var b strings.Builder
	for _, r := range strings.ToLower(elem) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	name := b.String()
	if name == "" || name[0] < 'a' || isKeyword(name) {
		name = "p" + name
	}
	return name
}

func isKeyword(s string) bool {
	switch s {
	case "break", "case", "chan", "const", "continue", "default", "defer", "else",
		"fallthrough", "for", "func", "go", "goto", "if", "import", "interface",
		"map", "package", "range", "return", "select", "struct", "switch", "type", "var":
		return true
	}
	return false
}

// addRuntime adds a generated module version with no dependencies
// (used by /_control/add). The content depends on the version.
func (s *store) addRuntime(path, version string, size int) error {
	gomod := fmt.Sprintf("module %s\n\ngo 1.16\n", path)
	files := map[string]string{
		"go.mod": gomod,
		"gen.go": fmt.Sprintf("// Package %[1]s was added at runtime.\npackage %[1]s\n\n// Version is the module version.\nconst Version = %[2]q\n", packageName(path), version),
	}
	if size > 0 {
		// Incompressible, deterministic filler: the zip is about size bytes.
		rng := mathrand.New(mathrand.NewSource(int64(len(path)*31 + len(version))))
		b := make([]byte, size)
		rng.Read(b)
		files["data.bin"] = string(b)
	}
	if strings.HasSuffix(version, "+incompatible") {
		delete(files, "go.mod")
		gomod = fmt.Sprintf("module %s\n", path)
	}
	return s.addGenerated(path, version, gomod, files)
}

// genPath is the path of the i-th module of a generated graph under prefix
// (example.com/gen for -gen, example.com/genreal for -gen-files).
func genPath(prefix string, i int) string { return fmt.Sprintf("%s/m%04d", prefix, i) }

// addGenGraph adds n generated modules <prefix>/mNNNN v1.0.0; module i>0
// requires (and imports) modules i-1 and i/2, so requiring the last one
// pulls in the whole graph. Each module also carries fillers extra source
// files (see fillerSource), so a graph can be made of real-sized modules.
func (s *store) addGenGraph(prefix string, n, fillers int) error {
	for i := 0; i < n; i++ {
		path := genPath(prefix, i)
		deps := []int{}
		if i > 0 {
			deps = append(deps, i-1)
			if i/2 != i-1 {
				deps = append(deps, i/2)
			}
		}
		var gomod, imports, body strings.Builder
		fmt.Fprintf(&gomod, "module %s\n\ngo 1.16\n", path)
		body.WriteString("1")
		for _, d := range deps {
			fmt.Fprintf(&gomod, "\nrequire %s v1.0.0\n", genPath(prefix, d))
			fmt.Fprintf(&imports, "import %s %q\n", packageName(genPath(prefix, d)), genPath(prefix, d))
			fmt.Fprintf(&body, " + %s.N()", packageName(genPath(prefix, d)))
		}
		pkg := packageName(path)
		src := fmt.Sprintf("// Package %[1]s is generated.\npackage %[1]s\n\n%[2]s\n// N counts the packages below this one.\nfunc N() int { return %[3]s }\n",
			pkg, imports.String(), body.String())
		files := map[string]string{"go.mod": gomod.String(), "gen.go": src}
		rng := mathrand.New(mathrand.NewSource(int64(i)))
		for j := 0; j < fillers; j++ {
			files[fmt.Sprintf("f%02d.go", j)] = fillerSource(rng, pkg, j)
		}
		if err := s.addGenerated(path, "v1.0.0", gomod.String(), files); err != nil {
			return err
		}
	}
	return nil
}

// fillerWords name the identifiers of filler source.
var fillerWords = strings.Fields(`buffer reader writer client server request response
	header body value index count offset length config option state cache entry record
	table node tree hash digest proof module version path query token stream frame chunk`)

// fillerSource is a deterministic Go source file of about 6 KB that
// compresses about as well as real code (~3.5x): the real 2020 module zips
// in the test data have a median of 22 files in 35 KB, which 20 of these
// per module approximate.
func fillerSource(rng *mathrand.Rand, pkg string, j int) string {
	word := func() string { return fillerWords[rng.Intn(len(fillerWords))] }
	var b strings.Builder
	fmt.Fprintf(&b, "// Code in %s, file %d: generated filler for benchmarks.\n\npackage %s\n\n", pkg, j, pkg)
	for k := 0; b.Len() < 6000; k++ {
		name := fmt.Sprintf("%s%s%d_%d", word(), strings.Title(word()), j, k)
		fmt.Fprintf(&b, "// %s returns the %s of the %s %s.\nfunc %s(%s, %s int) int {\n",
			name, word(), word(), word(), name, word(), word()+"X")
		for l := rng.Intn(5) + 2; l > 0; l-- {
			fmt.Fprintf(&b, "\tif v := %d * %d; v > %d {\n\t\treturn v %% %d\n\t}\n",
				rng.Intn(100000), rng.Intn(1000), rng.Intn(1<<20), rng.Intn(97)+1)
		}
		fmt.Fprintf(&b, "\treturn %d\n}\n\n", rng.Intn(1<<16))
	}
	return b.String()
}

// loadStatic indexes a GOPROXY-layout directory (e.g. a module cache's
// cache/download): DIR/<escaped path>/@v/<escaped version>.{info,mod,zip}.
func (s *store) loadStatic(dir string) error {
	n := 0
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.IsDir() || filepath.Base(filepath.Dir(p)) != "@v" {
			return nil
		}
		rel, err := filepath.Rel(dir, filepath.Dir(filepath.Dir(p)))
		if err != nil {
			return err
		}
		modPath, err := module.UnescapePath(filepath.ToSlash(rel))
		if err != nil {
			return nil // not a module directory
		}
		base := filepath.Base(p)
		ext := filepath.Ext(base)
		if ext != ".info" && ext != ".mod" && ext != ".zip" {
			return nil
		}
		version, err := module.UnescapeVersion(strings.TrimSuffix(base, ext))
		if err != nil || !semver.IsValid(version) {
			return nil
		}
		e := s.get(modPath, version)
		if e == nil {
			e = &entry{Path: modPath, Version: version}
			s.put(e)
			n++
		}
		switch ext {
		case ".info":
			e.infoFile = p
		case ".mod":
			e.modFile = p
		case ".zip":
			e.zipF = p
		}
		return nil
	})
	if err == nil && n == 0 {
		err = errors.New("no module versions found")
	}
	return err
}

// bigPath is the path of the -big module whose zip is about n MiB.
func bigPath(n int) string { return fmt.Sprintf("example.com/big/m%d", n) }

// addBigModules adds, for each size N (MiB) in the comma-separated list,
// example.com/big/mN v1.0.0: a go.mod, one .go file and incompressible data
// files (seeded, so the bytes are the same every run) totalling N MiB less
// 0.1% and 64 KiB, so the zip is about N MiB and even N=500 stays under the
// 500 MiB module-zip limit (deflate adds ~0.03% to random data). Written with
// archive/zip at flate.BestSpeed rather than x/mod/zip.Create, whose default
// level needs about a minute for 500 MiB. Used by modgate's benchmarks (bench/).
func (s *store) addBigModules(list string) error {
	for _, f := range strings.Split(list, ",") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%d", &n); err != nil || n < 1 || n > 500 {
			return fmt.Errorf("bad size %q: want an integer MiB in 1..500", f)
		}
		path := bigPath(n)
		prefix := path + "@v1.0.0/"
		gomod := fmt.Sprintf("module %s\n\ngo 1.16\n", path)
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(w, flate.BestSpeed)
		})
		add := func(name string, data []byte) error {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: prefix + name, Method: zip.Deflate})
			if err == nil {
				_, err = w.Write(data)
			}
			return err
		}
		if err := add("go.mod", []byte(gomod)); err != nil {
			return err
		}
		src := fmt.Sprintf("// Package %[1]s carries %[2]d MiB of data.\npackage %[1]s\n\n// MiB is the zip size.\nconst MiB = %[2]d\n", packageName(path), n)
		if err := add("big.go", []byte(src)); err != nil {
			return err
		}
		rng := mathrand.New(mathrand.NewSource(int64(n)))
		const chunk = 8 << 20
		data := make([]byte, chunk)
		for left, i := n<<20-n<<10-64<<10, 0; left > 0; i++ {
			k := chunk
			if left < k {
				k = left
			}
			rng.Read(data[:k])
			if err := add(fmt.Sprintf("data/blob%03d.bin", i), data[:k]); err != nil {
				return err
			}
			left -= k
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if buf.Len() > modzip.MaxZipFile {
			return fmt.Errorf("%s: zip is %d bytes, over the module-zip limit", path, buf.Len())
		}
		s.put(&entry{Path: path, Version: "v1.0.0", info: makeInfo("v1.0.0"), mod: []byte(gomod), zip: buf.Bytes()})
	}
	return nil
}
