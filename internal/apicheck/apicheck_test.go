package apicheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/internal/testutil"
)

// libraryPackages are the packages whose exports are checked: all but the
// commands, the scripts and the build tool.
var libraryPackages = []string{"bert", "config", "data", "engine", "hub", "internal/atomicfile", "peft", "serve", "sweep", "torch", "torch/safetensors", "train", "verify"}

// allowed are exports that no production code uses yet, each with its reason.
var allowed = map[string]string{
	"torch.SetDropout": "the hook other packages' tests install a deterministic dropout with (internal/counterdropout); production code never replaces LibTorch's",
}

// TestNoTestOnlyExports: every export of the library packages has a
// production user; test helpers live in _test.go files.
func TestNoTestOnlyExports(t *testing.T) {
	got, err := testOnlyExports(testutil.RepoRoot(t), "github.com/loraqa/loraqa", libraryPackages)
	require.NoError(t, err)
	var bad []string
	for _, g := range got {
		if _, ok := allowed[g]; !ok {
			bad = append(bad, g)
		}
	}
	assert.Empty(t, bad, "exported but used only by tests: move them into a _test.go file (export_test.go pattern) or unexport them")
	for k := range allowed {
		assert.Contains(t, got, k, "%s has a production user now: take it off the allowed list", k)
	}
}

// TestTestOnlyExportsFinds runs the check on a made-up module.
func TestTestOnlyExportsFinds(t *testing.T) {
	a := `package a

const C = 1 // used by nobody
var V = 2   // used by its own package

type T struct{ F int }

func (T) M()    {} // used by a test only
func (*T) N()   {} // used by b
func (T) Error() string { return "" }

func Used()      {}
func OnlyTests() {}
func Internal() int { var t T; t.F = V; return t.F }
func helper()    { Internal() }
`
	aTest := `package a

import "testing"

func TestA(t *testing.T) { OnlyTests(); T{}.M(); _ = C }
`
	cases := []struct {
		name string
		b    string
		want []string
	}{
		{"plain import", `package b

import "example.com/m/a"

func B() { a.Used(); (&a.T{}).N() }
`, []string{"a.C", "a.OnlyTests", "a.T.M"}},
		{"renamed import, a test helper used in production", `package b

import aa "example.com/m/a"

func B() { aa.Used(); aa.OnlyTests(); var t aa.T; t.N(); t.M() }
`, []string{"a.C"}},
		{"a's identifiers named in b's own scope do not count", `package b

import "example.com/m/a"

func OnlyTests() {}
func B() { a.Used(); OnlyTests(); (&a.T{}).N() }
`, []string{"a.C", "a.OnlyTests", "a.T.M"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for p, src := range map[string]string{
				"a/a.go": a, "a/a_test.go": aTest, "b/b.go": c.b,
				"b/b_test.go":          "package b\n\nimport \"example.com/m/a\"\n\nvar _ = a.C\n",
				"a/testdata/broken.go": "package broken\n\nthis is not Go\n",
				".build/x/x.go":        "package x\n\nfunc Unused() {}\n",
			} {
				require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(src), 0o644))
			}
			got, err := testOnlyExports(root, "example.com/m", []string{"a"})
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestTestOnlyExportsReportsSyntaxErrors(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "a", "a.go")
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte("package a\n\nfunc {\n"), 0o644))
	_, err := testOnlyExports(root, "example.com/m", []string{"a"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), p)
}

// interfaceMethods are satisfied implicitly (json, errors, fmt, net/http,
// sort): nothing calls them by name.
var interfaceMethods = map[string]bool{
	"Error": true, "Unwrap": true, "Is": true, "As": true, "String": true, "GoString": true, "Format": true,
	"MarshalJSON": true, "UnmarshalJSON": true, "MarshalText": true, "UnmarshalText": true,
	"MarshalYAML": true, "UnmarshalYAML": true, "ServeHTTP": true,
	"Read": true, "Write": true, "Close": true, "Len": true, "Less": true, "Swap": true,
}

type goFile struct {
	dir  string // package directory, relative to the root, slash-separated
	test bool
	f    *ast.File
}

// testOnlyExports parses the Go files under root (module path modPath) and
// returns, sorted, the exported functions, methods, variables, constants and
// types declared in the non-test files of pkgs (directories relative to root)
// that no non-test file uses: "dir.Name" for top-level identifiers,
// "dir.Recv.Name" for methods. A top-level identifier counts as used when
// another package's production code selects it through an import of its
// package, or its own package's production code names it; a method counts as
// used when any production code selects a method of that name. Directories
// whose name starts with "." or "_" and testdata are skipped.
func testOnlyExports(root, modPath string, pkgs []string) ([]string, error) {
	files, err := parseTree(root)
	if err != nil {
		return nil, err
	}
	selected := map[string]bool{} // "dir.Name" selected through an import, by production code
	named := map[string]int{}     // "dir.Name": idents in dir's production code
	methods := map[string]bool{}  // selector names in production code
	for _, gf := range files {
		if gf.test {
			continue
		}
		imports := map[string]string{}
		for _, im := range gf.f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			dir, ok := strings.CutPrefix(path, modPath+"/")
			if !ok {
				continue
			}
			name := dir[strings.LastIndex(dir, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = dir
		}
		var visit func(n ast.Node) bool
		visit = func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				// x.Sel: Sel names a method, a field or another package's
				// identifier, never one of this package's top-level ones.
				methods[n.Sel.Name] = true
				if x, ok := n.X.(*ast.Ident); ok {
					if dir, ok := imports[x.Name]; ok {
						selected[dir+"."+n.Sel.Name] = true
					}
				}
				ast.Inspect(n.X, visit)
				return false
			case *ast.Ident:
				named[gf.dir+"."+n.Name]++
			}
			return true
		}
		ast.Inspect(gf.f, visit)
	}
	var out []string
	for _, d := range exportedDecls(files, pkgs) {
		switch {
		case d.recv != "":
			if !methods[d.name] && !interfaceMethods[d.name] {
				out = append(out, d.dir+"."+d.recv+"."+d.name)
			}
		case unused(d.dir, d.name, selected, named):
			out = append(out, d.dir+"."+d.name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// unused: not selected from another package and named only by its own
// declaration in its package's production code.
func unused(dir, name string, selected map[string]bool, named map[string]int) bool {
	k := dir + "." + name
	return !selected[k] && named[k] <= 1
}

func recvName(fl *ast.FieldList) string {
	t := fl.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch t := t.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.IndexExpr: // generic receiver
		if id, ok := t.X.(*ast.Ident); ok {
			return id.Name
		}
	}
	return "?"
}

func parseTree(root string) ([]goFile, error) {
	fset := token.NewFileSet()
	var files []goFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if p != root && (strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution|parser.ParseComments)
		if err != nil {
			return fmt.Errorf("apicheck: %w", err)
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return fmt.Errorf("apicheck: %s: %w", p, err)
		}
		files = append(files, goFile{dir: filepath.ToSlash(rel), test: strings.HasSuffix(p, "_test.go"), f: f})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

// documentedPackages are the packages whose every exported identifier must
// have a doc comment that starts with its name (the API a Go user meets).
var documentedPackages = []string{"engine", "peft", "serve", "train"}

// TestDocComments: every exported function, method (of an exported type),
// type, constant and variable of documentedPackages has a doc comment that
// starts with its name; a constant or variable of a documented group may
// lean on the group's comment.
func TestDocComments(t *testing.T) {
	got, err := undocumented(testutil.RepoRoot(t), documentedPackages)
	require.NoError(t, err)
	assert.Empty(t, got, "exported identifiers without a doc comment that starts with their name")
}

func TestUndocumentedFinds(t *testing.T) {
	root := t.TempDir()
	src := `package a

// F does.
func F() {}

// does not start with the name
func G() {}

func H() {}

// T is.
type T struct{}

// M is a method.
func (T) M() {}

func (T) N() {}

type u struct{}

func (u) Exported() {}

// Kinds of things.
const (
	K1 = 1
	K2 = 2
)

const (
	L1 = 1 // L1 is one.
	L2 = 2
)
`
	require.NoError(t, os.MkdirAll(filepath.Join(root, "a"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "a", "a.go"), []byte(src), 0o644))
	got, err := undocumented(root, []string{"a"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a.G", "a.H", "a.L2", "a.T.N"}, got)
}

// undocumented lists, sorted, the exported identifiers of pkgs' non-test
// files whose doc comment is missing or does not start with their name.
func undocumented(root string, pkgs []string) ([]string, error) {
	files, err := parseTree(root)
	if err != nil {
		return nil, err
	}
	startsWith := func(doc *ast.CommentGroup, name string) bool {
		if doc == nil {
			return false
		}
		text := doc.Text()
		rest, ok := strings.CutPrefix(text, name)
		return ok && (rest == "" || !isIdentRune(rest[0]))
	}
	var out []string
	for _, d := range exportedDecls(files, pkgs) {
		name := d.name
		if d.recv != "" {
			if !ast.IsExported(d.recv) {
				continue
			}
			name = d.recv + "." + name
		}
		if !startsWith(d.doc, d.name) && !startsWith(d.comment, d.name) && !d.groupDoc {
			out = append(out, d.dir+"."+name)
		}
	}
	sort.Strings(out)
	return out, nil
}

func isIdentRune(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// decl is an exported declaration: a function, a method (recv: its
// receiver type), a type, a constant or a variable, with its doc comment,
// its line comment (constants and variables), and whether it stands
// undocumented in a group that has a doc comment.
type decl struct {
	dir, recv, name string
	doc, comment    *ast.CommentGroup
	groupDoc        bool
}

// exportedDecls lists the exported declarations of pkgs' non-test files.
func exportedDecls(files []goFile, pkgs []string) []decl {
	var out []decl
	for _, gf := range files {
		if gf.test || !slices.Contains(pkgs, gf.dir) {
			continue
		}
		for _, d := range gf.f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() {
					dd := decl{dir: gf.dir, name: d.Name.Name, doc: d.Doc}
					if d.Recv != nil {
						dd.recv = recvName(d.Recv)
					}
					out = append(out, dd)
				}
			case *ast.GenDecl:
				grouped := d.Lparen.IsValid()
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						doc := s.Doc
						if doc == nil && !grouped {
							doc = d.Doc
						}
						if s.Name.IsExported() {
							out = append(out, decl{dir: gf.dir, name: s.Name.Name, doc: doc})
						}
					case *ast.ValueSpec:
						doc := s.Doc
						if doc == nil && !grouped {
							doc = d.Doc
						}
						leans := grouped && d.Doc != nil && s.Doc == nil && s.Comment == nil
						for _, id := range s.Names {
							if id.IsExported() {
								out = append(out, decl{dir: gf.dir, name: id.Name, doc: doc, comment: s.Comment, groupDoc: leans})
							}
						}
					}
				}
			}
		}
	}
	return out
}
