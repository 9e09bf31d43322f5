// Command oracle prints golang.org/x/mod's verdicts on the inputs read from
// stdin (one per line) as the rows of x_mod_oracle.tsv, which the Rust tests in
// src/module/oracle_tests.rs compare against. Regenerate with (Go 1.19, x/mod v0.7.0):
//
//	cut -f1 x_mod_oracle.tsv | grep -v '^#' | GOPATH=/usr/share/gocode GO111MODULE=off go run oracle.go > new.tsv
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

func ok(err error) string {
	if err != nil {
		return "E"
	}
	return "O"
}

func res(s string, err error) string {
	if err != nil {
		return "E"
	}
	return "O:" + s
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	fmt.Fprintln(out, "# Verdicts of golang.org/x/mod v0.7.0 (Go 1.19) on fuzzed inputs, one tab-separated row each; made by oracle.go.")
	fmt.Fprintln(out, "# input\tCheckPath,CheckImportPath,CheckFilePath\tEscapePath\tUnescapePath\tEscapeVersion\tUnescapeVersion\tSplitPathVersion\tIsValid|Canonical|Major|MajorMinor|Prerelease|Build\tIsPseudoVersion\tPseudoVersionBase\tPseudoVersionTime\tPseudoVersionRev\tMatchPathMajor(input, each of PATH_MAJORS)\tCheck(input split at @, else with v1.0.0)")
	for in.Scan() {
		s := in.Text()
		row := []string{s, ok(module.CheckPath(s)) + ok(module.CheckImportPath(s)) + ok(module.CheckFilePath(s))}
		row = append(row, res(module.EscapePath(s)), res(module.UnescapePath(s)))
		row = append(row, res(module.EscapeVersion(s)), res(module.UnescapeVersion(s)))
		if prefix, major, k := module.SplitPathVersion(s); k {
			row = append(row, "O:"+prefix+"|"+major)
		} else {
			row = append(row, "E")
		}
		row = append(row, fmt.Sprint(semver.IsValid(s))+"|"+semver.Canonical(s)+"|"+semver.Major(s)+"|"+
			semver.MajorMinor(s)+"|"+semver.Prerelease(s)+"|"+semver.Build(s))
		row = append(row, fmt.Sprint(module.IsPseudoVersion(s)), res(module.PseudoVersionBase(s)))
		t, err := module.PseudoVersionTime(s)
		row = append(row, res(t.UTC().Format("2006-01-02T15:04:05Z"), err), res(module.PseudoVersionRev(s)))
		var matches []string
		for _, pm := range []string{"", "/v2", ".v1", ".v0", ".v2-unstable", ".v1-unstable", "/v3"} { // PATH_MAJORS
			matches = append(matches, fmt.Sprint(module.MatchPathMajor(s, pm)))
		}
		row = append(row, strings.Join(matches, ","))
		path, version := s, "v1.0.0"
		if i := strings.Index(s, "@"); i >= 0 {
			path, version = s[:i], s[i+1:]
		}
		row = append(row, ok(module.Check(path, version)))
		fmt.Fprintln(out, strings.Join(row, "\t"))
	}
}
