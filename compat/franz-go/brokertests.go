// Lists the Test functions of a Go package's _test.go files, one a line: NAME broker|unit FILE.
// "broker" when the test reaches, through the package's own functions (transitively), one of
// the identifiers given (franz-go's helpers that reach the brokers of KGO_SEEDS, or the SASL
// seeds). compat/franz-go/run.sh runs the "broker" tests of pkg/kgo against a Sluice node.
//
//	go run brokertests.go DIR IDENT,IDENT,...
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	dir := os.Args[1]
	roots := map[string]bool{}
	for _, r := range strings.Split(os.Args[2], ",") {
		roots[r] = true
	}
	fset := token.NewFileSet()
	files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	calls := map[string]map[string]bool{} // func (or Type.method) -> identifiers referenced
	var tests []string
	testFile := map[string]string{}
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			panic(err)
		}
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			name := fd.Name.Name
			refs := map[string]bool{}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.Ident:
					refs[x.Name] = true
				case *ast.SelectorExpr:
					refs[x.Sel.Name] = true
				}
				return true
			})
			if calls[name] == nil {
				calls[name] = map[string]bool{}
			}
			for r := range refs {
				calls[name][r] = true
			}
			if fd.Recv == nil && strings.HasPrefix(name, "Test") && len(fd.Type.Params.List) == 1 {
				tests = append(tests, name)
				testFile[name] = filepath.Base(f)
			}
		}
	}
	// A fixed point: a function reaches a broker if it names a root or a function that does.
	// init (package initialization, which reads the seeds) is never called by name; a method
	// named init (metrics' m.init) must not count as a call to it.
	broker := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for fn, refs := range calls {
			if broker[fn] || fn == "init" {
				continue
			}
			for r := range refs {
				if roots[r] || (r != "init" && broker[r]) {
					broker[fn] = true
					changed = true
					break
				}
			}
		}
	}
	reaches := func(fn string) bool { return broker[fn] }
	sort.Strings(tests)
	for _, t := range tests {
		kind := "unit"
		if reaches(t) {
			kind = "broker"
		}
		fmt.Printf("%s %s %s\n", t, kind, testFile[t])
	}
}
