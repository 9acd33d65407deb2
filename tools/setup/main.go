// Command setup finds LibTorch, installs what a Debian/Ubuntu machine lacks, and
// generates the project-local gotch copy that the build uses.
//
// It never edits the shared Go module cache: gotch v0.9.1 is copied into
// .build/gotch, its libtch/lib.go is rewritten with the cgo flags of the LibTorch
// found, every generated C++ wrapper that does not compile against that LibTorch
// is replaced by a stub that raises a clear error, and go.work points the module
// at the copy. It runs again only when the LibTorch (or this program) changes.
//
//	go run ./tools/setup [-libtorch DIR] [-source pypi|debian] [-flavour cpu|cuda] [-force] [-no-install] [-out DIR -gowork FILE]
//
// -out and -gowork let a second build live beside the default one (the GPU
// bundle, scripts/gpu-bundle.sh: -out .build/gpu -gowork .build/gpu/go.work,
// then GOWORK=$PWD/.build/gpu/go.work go build); the default build's .build
// and go.work are left alone.
//
// LibTorch is taken from, in this order: -libtorch or $LIBTORCH (an official
// libtorch zip or a Python torch package dir with include/ and lib/); else the
// source named by -source or $LIBTORCH_SOURCE:
//   - pypi (the default): PyTorch's own LibTorch from the torch wheel on PyPI,
//     version PinnedPyPIVersion unless $LIBTORCH_VERSION says otherwise, in the
//     flavour of -flavour or $LIBTORCH_FLAVOUR (cpu, the default, or cuda);
//   - debian: Debian/Ubuntu's libtorch-dev (installed with apt-get when running
//     as root and missing).
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/loraqa/loraqa/internal/atomicfile"
)

// setupVersion changes whenever the generated copy would change for the same LibTorch.
const setupVersion = "12"

const gotchModule = "github.com/sugarme/gotch"
const gotchVersion = "v0.9.1"

// LibTorch describes the LibTorch installation the build links against.
type LibTorch struct {
	Source     string `json:"source"`  // "LIBTORCH", "flag", "pypi" or "debian"
	Flavour    string `json:"flavour"` // "cpu" or "cuda"
	Include    string `json:"include"`
	APIInclude string `json:"api_include"`
	Lib        string `json:"lib"`
	Version    string `json:"version"`
	CUDA       bool   `json:"cuda"`
	CXX11ABI   bool   `json:"cxx11_abi"`
	// ExtraLibs are the nvidia-* wheels' library directories (PyPI source).
	ExtraLibs []string `json:"extra_libs,omitempty"`
}

// Result is written to .build/libtorch.json for doctor and for humans.
type Result struct {
	LibTorch
	Gotch        string   `json:"gotch"`
	Stubbed      []string `json:"stubbed"`
	SetupVersion string   `json:"setup_version"`
	Stamp        string   `json:"stamp"`
}

func main() {
	libFlag := flag.String("libtorch", "", "LibTorch directory (include/ and lib/); default $LIBTORCH")
	source := flag.String("source", envOr("LIBTORCH_SOURCE", "pypi"), "where LibTorch comes from when no directory is given: pypi or debian")
	flavour := flag.String("flavour", envOr("LIBTORCH_FLAVOUR", "cpu"), "PyPI LibTorch flavour: cpu or cuda")
	version := flag.String("version", envOr("LIBTORCH_VERSION", PinnedPyPIVersion), "PyPI torch version")
	force := flag.Bool("force", false, "regenerate even if nothing changed")
	noInstall := flag.Bool("no-install", false, "never run apt-get")
	out := flag.String("out", ".build", "directory for the generated gotch copy")
	gowork := flag.String("gowork", "go.work", "the go.work file to write (build with GOWORK=<its absolute path> when it is not ./go.work)")
	flag.Parse()
	if err := run(options{*libFlag, *source, *flavour, *version}, *out, *gowork, *force, !*noInstall); err != nil {
		fmt.Fprintln(os.Stderr, "setup: error:", err)
		os.Exit(1)
	}
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "setup: "+format+"\n", a...) }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// options say where LibTorch comes from.
type options struct {
	dir, source, flavour, version string
}

func run(opt options, out, gowork string, force, install bool) error {
	lt, err := findLibTorch(opt, out, install)
	if err != nil {
		return err
	}
	if install && lt.Source == "debian" {
		ensureFastBLAS()
	}
	stamp := stampOf(lt)
	resPath := filepath.Join(out, "libtorch.json")
	if !force {
		if prev, err := readResult(resPath); err == nil && prev.Stamp == stamp && fileExists(filepath.Join(out, "gotch", "libtch", "lib.go")) && fileExists(gowork) {
			if err := writeShim(filepath.Join(out, "gotch"), lt); err != nil {
				return err
			}
			logf("up to date: LibTorch %s (%s, %s, cxx11 abi=%v) at %s, %d functions stubbed", lt.Version, lt.Source, lt.Flavour, lt.CXX11ABI, lt.Lib, len(prev.Stubbed))
			return nil
		}
	}
	src, err := gotchSource()
	if err != nil {
		return err
	}
	dst := filepath.Join(out, "gotch")
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := copyTree(src, dst); err != nil {
		return fmt.Errorf("copy gotch: %w", err)
	}
	if err := writeLibGo(filepath.Join(dst, "libtch", "lib.go"), lt); err != nil {
		return err
	}
	stubbed, err := stubUntilCompiles(filepath.Join(dst, "libtch"), lt)
	if err != nil {
		return err
	}
	if err := writeExtras(dst, lt, len(stubbed)); err != nil {
		return err
	}
	if err := writeShim(dst, lt); err != nil {
		return err
	}
	work, err := goWork(gowork, dst, lt.Lib)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(gowork), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(gowork, []byte(work)); err != nil {
		return err
	}
	res := Result{LibTorch: lt, Gotch: gotchVersion, Stubbed: stubbed, SetupVersion: setupVersion, Stamp: stamp}
	if err := atomicfile.WriteJSON(resPath, res); err != nil {
		return err
	}
	logf("LibTorch %s (%s, %s, cxx11 abi=%v) include %s lib %s", lt.Version, lt.Source, lt.Flavour, lt.CXX11ABI, lt.Include, lt.Lib)
	logf("gotch %s copied to %s; %d generated functions stubbed (not available in this LibTorch)", gotchVersion, dst, len(stubbed))
	return nil
}

// goWork is the text of the go.work file at path: it uses the module in the
// current directory and replaces gotch by the copy in dst, both named relative
// to the file's own directory (as go resolves them).
func goWork(path, dst, lib string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	absWork, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	absDst, err := filepath.Abs(dst)
	if err != nil {
		return "", err
	}
	use, err := filepath.Rel(filepath.Dir(absWork), wd)
	if err != nil {
		return "", err
	}
	rep, err := filepath.Rel(filepath.Dir(absWork), absDst)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(rep, "..") {
		rep = "./" + filepath.ToSlash(rep)
	}
	return fmt.Sprintf("go 1.24.0\n\nuse %s\n\n// generated by tools/setup: the gotch copy built for %s\nreplace %s %s => %s\n", filepath.ToSlash(use), lib, gotchModule, gotchVersion, filepath.ToSlash(rep)), nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func readResult(p string) (*Result, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var r Result
	return &r, json.Unmarshal(b, &r)
}

func stampOf(lt LibTorch) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%s|%s|%v|%v|%s|%s|%s|%s|%v", lt.Include, lt.Lib, lt.Version, lt.APIInclude, lt.CUDA, lt.CXX11ABI, gotchVersion, setupVersion, lt.Source, lt.Flavour, lt.ExtraLibs)
	for _, f := range []string{"libtorch_cpu.so", "libtorch.so"} {
		if st, err := os.Stat(filepath.Join(lt.Lib, f)); err == nil {
			fmt.Fprintf(h, "|%s:%d:%d", f, st.Size(), st.ModTime().Unix())
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// findLibTorch applies the lookup order of the package doc.
func findLibTorch(opt options, out string, install bool) (LibTorch, error) {
	if opt.dir != "" {
		return fromDir(opt.dir, "flag")
	}
	if d := os.Getenv("LIBTORCH"); d != "" {
		return fromDir(d, "LIBTORCH")
	}
	switch opt.source {
	case "pypi":
		return fromPyPI(opt.version, opt.flavour, out, install)
	case "debian":
	default:
		return LibTorch{}, fmt.Errorf("LIBTORCH_SOURCE=%q: want pypi or debian (or set LIBTORCH to a LibTorch directory)", opt.source)
	}
	lt, err := fromDebian()
	if err == nil {
		return lt, nil
	}
	if !install || os.Getuid() != 0 || !haveCmd("apt-get") {
		return LibTorch{}, fmt.Errorf("LibTorch not found: set LIBTORCH to an unpacked libtorch zip (or a Python torch package dir with include/ and lib/), or install Debian/Ubuntu's libtorch-dev (%v)", err)
	}
	logf("LibTorch not found; installing Debian's libtorch-dev with apt-get")
	if err := aptInstall("libtorch-dev"); err != nil {
		return LibTorch{}, err
	}
	return fromDebian()
}

func haveCmd(name string) bool { _, err := exec.LookPath(name); return err == nil }

var aptUpdated bool

func aptInstall(pkgs ...string) error {
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if !aptUpdated {
		cmd := exec.Command("apt-get", "update", "-qq")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get update: %w", err)
		}
		aptUpdated = true
	}
	cmd := exec.Command("apt-get", append([]string{"install", "-y", "-qq"}, pkgs...)...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get install %s: %w", strings.Join(pkgs, " "), err)
	}
	return nil
}

// ensureFastBLAS installs OpenBLAS: Debian's LibTorch links libblas.so.3, which is
// netlib's reference BLAS (far slower on GEMM) unless an optimised one is installed.
func ensureFastBLAS() {
	if !haveCmd("dpkg-query") {
		return
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "libopenblas0-pthread").Output(); err == nil && strings.Contains(string(out), "ok installed") {
		return
	}
	if os.Getuid() != 0 || !haveCmd("apt-get") {
		logf("warning: LibTorch will use netlib's reference BLAS (slow); run: sudo apt-get install libopenblas0-pthread")
		return
	}
	logf("installing libopenblas0-pthread (fast BLAS for Debian's LibTorch)")
	if err := aptInstall("libopenblas0-pthread"); err != nil {
		logf("warning: %v", err)
	}
}

func fromDir(dir, source string) (LibTorch, error) {
	dir, _ = filepath.Abs(dir)
	lt := LibTorch{Source: source, Include: filepath.Join(dir, "include"), Lib: filepath.Join(dir, "lib")}
	lt.APIInclude = filepath.Join(lt.Include, "torch", "csrc", "api", "include")
	if !fileExists(filepath.Join(lt.Lib, "libtorch.so")) && !fileExists(filepath.Join(lt.Lib, "libtorch_cpu.so")) {
		return lt, fmt.Errorf("%s=%s: no libtorch.so or libtorch_cpu.so in %s", source, dir, lt.Lib)
	}
	if !fileExists(filepath.Join(lt.APIInclude, "torch", "version.h")) {
		return lt, fmt.Errorf("%s=%s: no torch/version.h under %s", source, dir, lt.APIInclude)
	}
	return finish(lt, "")
}

func fromDebian() (LibTorch, error) {
	lt := LibTorch{Source: "debian", Include: "/usr/include", APIInclude: "/usr/include/torch/csrc/api/include"}
	for _, l := range []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"} {
		if fileExists(filepath.Join(l, "libtorch.so")) {
			lt.Lib = l
			break
		}
	}
	if lt.Lib == "" || !fileExists(filepath.Join(lt.APIInclude, "torch", "version.h")) {
		return lt, errors.New("no libtorch-dev in /usr")
	}
	pkgVersion := ""
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "libtorch-dev").Output(); err == nil {
		// 1.13.1+dfsg-4 -> 1.13.1: the package's upstream version (its version.h says 1.13.0).
		v := string(out)
		if i := strings.IndexAny(v, "+-~"); i > 0 {
			v = v[:i]
		}
		if j := strings.Index(v, ":"); j >= 0 {
			v = v[j+1:]
		}
		pkgVersion = v
	}
	return finish(lt, pkgVersion)
}

var versionRe = regexp.MustCompile(`#define TORCH_VERSION_(MAJOR|MINOR|PATCH) (\d+)`)

func finish(lt LibTorch, override string) (LibTorch, error) {
	b, err := os.ReadFile(filepath.Join(lt.APIInclude, "torch", "version.h"))
	if err != nil {
		return lt, err
	}
	parts := map[string]string{}
	for _, m := range versionRe.FindAllStringSubmatch(string(b), -1) {
		parts[m[1]] = m[2]
	}
	lt.Version = parts["MAJOR"] + "." + parts["MINOR"] + "." + parts["PATCH"]
	if override != "" {
		lt.Version = override
	}
	lt.CUDA = fileExists(filepath.Join(lt.Lib, "libtorch_cuda.so"))
	lt.Flavour = "cpu"
	if lt.CUDA {
		lt.Flavour = "cuda"
	}
	lt.CXX11ABI = detectABI(lt.Lib)
	if v := os.Getenv("LIBTORCH_CXX11_ABI"); v != "" {
		lt.CXX11ABI = v == "1"
	}
	return lt, nil
}

// detectABI reads the C++ ABI from c10::Error's constructor (abiOf); failing
// that, it looks for the C++11 ABI's mangled std::string anywhere in libc10.so.
func detectABI(lib string) bool {
	if cxx11, ok := abiOf(lib); ok {
		return cxx11
	}
	b, err := os.ReadFile(filepath.Join(lib, "libc10.so"))
	if err != nil {
		return true
	}
	return bytes.Contains(b, []byte("St7__cxx11"))
}

func gotchSource() (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", gotchModule+"@"+gotchVersion)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", gotchModule, gotchVersion, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download gave no directory for %s", gotchModule)
	}
	return info.Dir, nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

func cgoFlags(lt LibTorch) (cflags, cxxflags, ldflags []string) {
	abi := "0"
	if lt.CXX11ABI {
		abi = "1"
	}
	// The ABI define goes to the C and the C++ compiles alike: cgo's CFLAGS do
	// not reach gotch's .cpp files.
	cflags = []string{"-I${SRCDIR}", "-O2", "-Wno-deprecated-declarations", "-Wno-unused-variable", "-Wno-sign-compare", "-Wno-unused-function", "-D_GLIBCXX_USE_CXX11_ABI=" + abi}
	// -w: gotch's vendored C++ (stb_image and the generated wrappers) warns by the
	// hundred under newer standards; the warnings are not ours to fix.
	cxxflags = []string{"-std=" + cxxStd(lt), "-w", "-D_GLIBCXX_USE_CXX11_ABI=" + abi, "-I${SRCDIR}", "-I" + lt.Include, "-I" + lt.APIInclude}
	ldflags = []string{"-L" + lt.Lib, "-Wl,-rpath," + lt.Lib}
	for _, d := range lt.ExtraLibs {
		ldflags = append(ldflags, "-Wl,-rpath,"+d, "-Wl,-rpath-link,"+d)
	}
	ldflags = append(ldflags, "-lstdc++")
	if fileExists(filepath.Join(lt.Lib, "libtorch.so")) { // the PyPI cpu flavour has none (it needs libtorch_cuda)
		ldflags = append(ldflags, "-ltorch")
	}
	ldflags = append(ldflags, "-lc10", "-ltorch_cpu")
	if lt.CUDA {
		// --no-as-needed keeps libtorch_cuda linked although no symbol of it is used
		// directly: without it LibTorch registers no CUDA backend.
		ldflags = append(ldflags, "-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Wl,--as-needed")
		if fileExists("/usr/local/cuda/include") {
			cxxflags = append(cxxflags, "-I/usr/local/cuda/include")
		}
	}
	return
}

// cxxStd is the C++ standard LibTorch's headers need: C++17 up to PyTorch 2.9,
// C++20 after (its torch/all.h says so with an #error).
func cxxStd(lt LibTorch) string {
	b, err := os.ReadFile(filepath.Join(lt.APIInclude, "torch", "all.h"))
	if err == nil && bytes.Contains(b, []byte("C++20 or later")) {
		return "c++20"
	}
	return "c++17"
}

func writeLibGo(path string, lt LibTorch) error {
	c, cxx, ld := cgoFlags(lt)
	var b strings.Builder
	fmt.Fprintf(&b, "package libtch\n\n// Generated by loraqa's tools/setup for LibTorch %s (%s, cuda=%v).\n\n", lt.Version, lt.Lib, lt.CUDA)
	fmt.Fprintf(&b, "// #cgo CFLAGS: %s\n", strings.Join(c, " "))
	fmt.Fprintf(&b, "// #cgo CXXFLAGS: %s\n", strings.Join(cxx, " "))
	fmt.Fprintf(&b, "// #cgo LDFLAGS: %s\n", strings.Join(ld, " "))
	b.WriteString("import \"C\"\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

var errLineRe = regexp.MustCompile(`torch_api_generated\.cpp\.h:(\d+):\d+: error:`)

// stubUntilCompiles compiles libtch's C++ with the LibTorch headers (syntax only)
// and replaces each generated function the compiler rejects with a stub.
func stubUntilCompiles(libtch string, lt LibTorch) ([]string, error) {
	gen := filepath.Join(libtch, "torch_api_generated.cpp.h")
	var stubbed []string
	for pass := 1; pass <= 6; pass++ {
		logf("compiling gotch's C++ against LibTorch %s (pass %d; about 2 minutes)", lt.Version, pass)
		out, err := syntaxCheck(libtch, lt)
		if err == nil {
			sort.Strings(stubbed)
			return stubbed, nil
		}
		lines := map[int]bool{}
		for _, m := range errLineRe.FindAllStringSubmatch(out, -1) {
			n, _ := strconv.Atoi(m[1])
			lines[n] = true
		}
		if len(lines) == 0 {
			return nil, fmt.Errorf("gotch's C++ does not compile against %s, outside the generated wrappers:\n%s", lt.Include, tail(out, 4000))
		}
		names, err := stubFunctions(gen, lines)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("compiler errors at lines that are not in a generated function:\n%s", tail(out, 4000))
		}
		stubbed = append(stubbed, names...)
		logf("pass %d: stubbed %d functions", pass, len(names))
	}
	return nil, errors.New("gotch's C++ still fails after 6 passes of stubbing")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func syntaxCheck(libtch string, lt LibTorch) (string, error) {
	c, cxx, _ := cgoFlags(lt)
	args := []string{"-fsyntax-only", "-fmax-errors=0", "-w"}
	for _, f := range append(c, cxx...) {
		args = append(args, strings.ReplaceAll(f, "${SRCDIR}", libtch))
	}
	args = append(args, filepath.Join(libtch, "torch_api.cpp"))
	cxxName := os.Getenv("CXX")
	if cxxName == "" {
		cxxName = "g++"
	}
	cmd := exec.Command(cxxName, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

var funcStartRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_ ]*\*?\s*\*?(atg_[A-Za-z0-9_]+)\(`)

// stubFunctions replaces the PROTECT(...) body of every function that holds one of
// the given (1-based) lines with a throw; the function's trailing return stays.
func stubFunctions(path string, errLines map[int]bool) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	type span struct {
		name             string
		protect, closing int // 0-based indexes of "  PROTECT(" and its closing "  )"
	}
	var spans []span
	for i := 0; i < len(lines); i++ {
		m := funcStartRe.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		s := span{name: m[1], protect: -1, closing: -1}
		for j := i + 1; j < len(lines) && lines[j] != "}"; j++ {
			if s.protect < 0 && strings.TrimSpace(lines[j]) == "PROTECT(" {
				s.protect = j
			} else if s.protect >= 0 && lines[j] == "  )" {
				s.closing = j
			}
		}
		if s.protect >= 0 && s.closing > s.protect {
			spans = append(spans, s)
		}
	}
	var names []string
	drop := map[int]bool{}
	for _, s := range spans {
		hit := false
		for l := s.protect + 1; l <= s.closing; l++ {
			if errLines[l+1] {
				hit = true
				break
			}
		}
		if !hit {
			continue
		}
		names = append(names, s.name)
		lines[s.protect+1] = fmt.Sprintf("    throw std::runtime_error(\"%s is not available in this libtorch (stubbed by loraqa's setup)\");", s.name)
		for l := s.protect + 2; l < s.closing; l++ {
			drop[l] = true
		}
	}
	var w bytes.Buffer
	bw := bufio.NewWriter(&w)
	for i, l := range lines {
		if drop[i] {
			continue
		}
		bw.WriteString(l)
		if i < len(lines)-1 {
			bw.WriteByte('\n')
		}
	}
	bw.Flush()
	return names, os.WriteFile(path, w.Bytes(), 0o644)
}

// writeExtras adds loraqa's small additions to the gotch copy: the build facts
// doctor reports, the cgo shims gotch lacks (manual_seed, thread counts), and a
// live-tensor count read under gotch's own lock.
func writeExtras(dst string, lt LibTorch, stubbed int) error {
	build := fmt.Sprintf(`package libtch

// Generated by loraqa's tools/setup.

//#include <stdlib.h>
//#include "stdbool.h"
//#include "torch_api.h"
//char* loraqa_show_config(void);
import "C"

import (
	"sync/atomic"
	"unsafe"
)

// loraqaCalls counts the calls into LibTorch (every C function of this
// package, and loraqa's shim through LoraqaCountCall).
var loraqaCalls atomic.Int64

func loraqaCount() { loraqaCalls.Add(1) }

// LoraqaCalls is the number of calls into LibTorch so far in this process.
func LoraqaCalls() int64 { return loraqaCalls.Load() }

// LoraqaCountCall counts one call into LibTorch made outside this package.
func LoraqaCountCall() { loraqaCalls.Add(1) }

const (
	LoraqaLibtorchVersion = %q
	LoraqaLibtorchLib     = %q
	LoraqaCUDABuild       = %v
	LoraqaStubbed         = %d
	LoraqaSource          = %q
	LoraqaFlavour         = %q
	LoraqaCXX11ABI        = %v
)

// LoraqaShowConfig is at::show_config(): how LibTorch was built (BLAS, MKL,
// oneDNN, CPU capability in use).
func LoraqaShowConfig() string {
	p := C.loraqa_show_config()
	if p == nil {
		return ""
	}
	defer C.free(unsafe.Pointer(p))
	return C.GoString(p)
}

// LoraqaManualSeed seeds LibTorch's default generators (CPU and CUDA).
func LoraqaManualSeed(seed int64) { loraqaCount(); C.at_manual_seed(C.int64_t(seed)) }

// LoraqaGetNumThreads is at::get_num_threads.
func LoraqaGetNumThreads() int { return int(C.at_get_num_threads()) }

// LoraqaSetNumThreads is at::set_num_threads.
func LoraqaSetNumThreads(n int) { loraqaCount(); C.at_set_num_threads(C.int(n)) }
`, lt.Version, lt.Lib, lt.CUDA, stubbed, lt.Source, lt.Flavour, lt.CXX11ABI)
	if err := os.WriteFile(filepath.Join(dst, "libtch", "loraqa_build.go"), []byte(build), 0o644); err != nil {
		return err
	}
	const extraCpp = `// Generated by loraqa's tools/setup.
#include <ATen/Version.h>
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" char* loraqa_show_config() {
  try {
    std::string s = at::show_config();
    return strdup(s.c_str());
  } catch (...) {
    return nullptr;
  }
}
`
	if err := os.WriteFile(filepath.Join(dst, "libtch", "loraqa_extra.cpp"), []byte(extraCpp), 0o644); err != nil {
		return err
	}
	if err := panicInsteadOfExit(filepath.Join(dst, "ts")); err != nil {
		return err
	}
	if err := countCalls(filepath.Join(dst, "libtch")); err != nil {
		return err
	}
	// gotch gives every tensor a 100 KB Go allocation so that the Go GC runs
	// often enough to free LibTorch memory through finalizers. loraqa drops its
	// tensors explicitly, and that ballast costs gigabytes of garbage a step.
	tensorGo := filepath.Join(dst, "ts", "tensor.go")
	src, err := os.ReadFile(tensorGo)
	if err != nil {
		return err
	}
	const ballast = "\tx.d = new(bigStruct)\n"
	if !bytes.Contains(src, []byte(ballast)) {
		return fmt.Errorf("%s: the per-tensor ballast line was not found; is this gotch %s?", tensorGo, gotchVersion)
	}
	src = bytes.Replace(src, []byte(ballast), []byte("\t// loraqa: no per-tensor ballast (tensors are dropped explicitly)\n"), 1)
	if src, err = keepReceiversAlive(tensorGo, src); err != nil {
		return err
	}
	if err := os.WriteFile(tensorGo, src, 0o644); err != nil {
		return err
	}
	if err := fixGeneratedLeaks(filepath.Join(dst, "ts", "tensor-generated.go")); err != nil {
		return err
	}
	if err := keepArgumentsAlive(filepath.Join(dst, "ts", "tensor-generated.go")); err != nil {
		return err
	}
	live := `package ts

// Generated by loraqa's tools/setup.

// LoraqaLiveTensors is the number of tensors created through gotch and not yet freed.
func LoraqaLiveTensors() int {
	lock.Lock()
	defer lock.Unlock()
	return len(ExistingTensors)
}
`
	if err := os.WriteFile(filepath.Join(dst, "ts", "loraqa_live.go"), []byte(live), 0o644); err != nil {
		return err
	}
	return addScopes(filepath.Join(dst, "ts"))
}

// newTensorRegistered is the line of gotch's newTensor that registers a new
// tensor, under the package lock; recordInScopes follows it.
const newTensorRegistered = "\tExistingTensors[name] = struct{}{}\n\tlock.Unlock()\n"

// recordInScopes makes newTensor hand each new tensor to the open scopes of
// its OS thread (see scopeGo).
func recordInScopes(src []byte) ([]byte, error) {
	if bytes.Count(src, []byte(newTensorRegistered)) != 1 {
		return nil, fmt.Errorf("newTensor's registration of a tensor was not found once; is this gotch %s?", gotchVersion)
	}
	return bytes.Replace(src, []byte(newTensorRegistered), []byte("\tExistingTensors[name] = struct{}{}\n\tloraqaRecord(x) // loraqa: scopes (loraqa_scope.go)\n\tlock.Unlock()\n"), 1), nil
}

// scopeGo lets a failed piece of tensor work free what it created at once:
// LibTorch memory, GPU memory above all, is otherwise freed only when Go's GC
// runs the tensors' finalizers.
const scopeGo = `package ts

// Generated by loraqa's tools/setup.

import "runtime"

// LoraqaScope records the tensors created on one OS thread while it is open,
// so that work that failed can free them at once. Tensors created by other
// goroutines meanwhile are not recorded.
type LoraqaScope struct {
	tid     int
	created []*Tensor
}

var loraqaScopes []*LoraqaScope // the open scopes; guarded by lock

// LoraqaOpenScope starts recording the tensors the calling goroutine creates.
// It locks the goroutine to its OS thread (nested locks are counted) until
// Close, which the same goroutine must call.
func LoraqaOpenScope() *LoraqaScope {
	runtime.LockOSThread()
	s := &LoraqaScope{tid: loraqaTid()}
	lock.Lock()
	loraqaScopes = append(loraqaScopes, s)
	lock.Unlock()
	return s
}

// Close stops recording. With free, it first frees every recorded tensor that
// is still live and returns how many it freed; without, it only lets go of
// them (they stay the caller's).
func (s *LoraqaScope) Close(free bool) int {
	lock.Lock()
	for i, o := range loraqaScopes {
		if o == s {
			loraqaScopes = append(loraqaScopes[:i], loraqaScopes[i+1:]...)
			break
		}
	}
	created := s.created
	s.created = nil
	lock.Unlock()
	runtime.UnlockOSThread()
	n := 0
	if free {
		for _, t := range created {
			if t.ctensor != nil && t.Drop() == nil {
				n++
			}
		}
	}
	return n
}

// loraqaRecord hands a new tensor to the open scopes of the calling OS
// thread. newTensor calls it with lock held.
func loraqaRecord(x *Tensor) {
	if len(loraqaScopes) == 0 {
		return
	}
	tid := loraqaTid()
	for _, s := range loraqaScopes {
		if s.tid == tid {
			s.created = append(s.created, x)
		}
	}
}
`

const tidLinuxGo = `package ts

// Generated by loraqa's tools/setup.

import "syscall"

func loraqaTid() int { return syscall.Gettid() }
`

const tidOtherGo = `//go:build !linux

package ts

// Generated by loraqa's tools/setup.

// loraqaTid cannot tell threads apart here: a scope records the tensors of
// every goroutine.
func loraqaTid() int { return 0 }
`

// addScopes adds LoraqaScope to gotch's ts package.
func addScopes(tsDir string) error {
	tensorGo := filepath.Join(tsDir, "tensor.go")
	src, err := os.ReadFile(tensorGo)
	if err != nil {
		return err
	}
	if src, err = recordInScopes(src); err != nil {
		return fmt.Errorf("%s: %w", tensorGo, err)
	}
	for name, b := range map[string][]byte{"tensor.go": src, "loraqa_scope.go": []byte(scopeGo), "loraqa_tid_linux.go": []byte(tidLinuxGo), "loraqa_tid_other.go": []byte(tidOtherGo)} {
		if err := os.WriteFile(filepath.Join(tsDir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// fixGeneratedLeaks mends two leaks in gotch's generated op wrappers (upstream
// issues #102, #115, #132): every op takes its output slot from C.malloc(0)
// and never frees it (and a zero-byte block is too small for ops with several
// outputs), and every in-place op replaces the tensor's handle with the new one
// the op returned without deleting the old, so each in-place op on a temporary
// kept that temporary's memory alive for good.
func fixGeneratedLeaks(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	const alloc = "ptr := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))\n"
	const inplace = "  ts.ctensor = *ptr\n"
	na, ni := bytes.Count(src, []byte(alloc)), bytes.Count(src, []byte(inplace))
	if na < 1000 || ni < 100 {
		return fmt.Errorf("%s: expected gotch %s's generated wrappers (found %d allocations, %d in-place ops)", path, gotchVersion, na, ni)
	}
	src = bytes.ReplaceAll(src, []byte(alloc), []byte("ptr := (*lib.Ctensor)(unsafe.Pointer(C.malloc(64)))\n  defer C.free(unsafe.Pointer(ptr))\n"))
	// The in-place op returned a second handle to the same tensor: delete it and
	// keep the one the Go tensor already owns.
	src = bytes.ReplaceAll(src, []byte(inplace), []byte("  lib.AtFree(*ptr)\n"))
	return os.WriteFile(path, src, 0o644)
}

// keepReceiversAlive makes every method of gotch's hand-written tensor.go
// keep its receiver alive until it returns: they pass ts.ctensor to C, and a
// receiver that is a temporary (Float64Values copies through one) could be
// finalized, its memory freed, in the middle of the call (a SIGSEGV in
// at_copy_data under torch's TestArgumentsOutliveTheirCall).
func keepReceiversAlive(path string, src []byte) ([]byte, error) {
	lines := strings.Split(string(src), "\n")
	out := make([]string, 0, len(lines)+100)
	patched := 0
	for _, line := range lines {
		out = append(out, line)
		if strings.HasPrefix(line, "func (ts *Tensor) ") && strings.HasSuffix(line, "{") {
			out = append(out, "\tdefer runtime.KeepAlive(ts)")
			patched++
		}
	}
	if patched < 40 {
		return nil, fmt.Errorf("%s: expected gotch %s's tensor methods (patched %d)", path, gotchVersion, patched)
	}
	return []byte(strings.Join(out, "\n")), nil
}

// keepArgumentsAlive makes every generated op keep its tensor and scalar
// arguments (and its receiver) reachable until LibTorch has returned. gotch
// frees both from Go finalizers, and a wrapper reads an argument's C handle
// and then never touches the Go value again, so an argument made inline —
// ts.FloatScalar(x) in a call — could be finalized, and its C memory freed,
// while the op was still using it (seen: baddbmm failing in toComplexDouble
// after 130 training steps; torch's TestArgumentsOutliveTheirCall).
func keepArgumentsAlive(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(src), "\n")
	out := make([]string, 0, len(lines)+4000)
	var alive []string // the current function's pointer arguments, until its C call
	patched := 0
	for _, line := range lines {
		if strings.HasPrefix(line, "func") {
			alive = pointerArgs(line)
		}
		out = append(out, line)
		if strings.Contains(line, "lib.Atg") && len(alive) > 0 {
			indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
			for _, name := range alive {
				out = append(out, indent+"runtime.KeepAlive("+name+")")
			}
			alive = nil
			patched++
		}
	}
	if patched < 2000 {
		return fmt.Errorf("%s: expected gotch %s's generated wrappers (patched %d calls)", path, gotchVersion, patched)
	}
	res := strings.Join(out, "\n")
	const imp = "import(\n  \"unsafe\"\n"
	if !strings.Contains(res, imp) {
		return fmt.Errorf("%s: import block not as expected", path)
	}
	res = strings.Replace(res, imp, imp+"  \"runtime\"\n", 1)
	return os.WriteFile(path, []byte(res), 0o644)
}

// pointerArgs lists the receiver and the parameters of type *Tensor, *Scalar
// or []*Tensor of a generated function's first line.
func pointerArgs(decl string) []string {
	var names []string
	rest := strings.TrimPrefix(decl, "func")
	if strings.HasPrefix(rest, "(ts *Tensor)") {
		names = append(names, "ts")
		rest = strings.TrimPrefix(rest, "(ts *Tensor)")
	}
	open := strings.Index(rest, "(")
	if open < 0 {
		return names
	}
	end := strings.Index(rest[open:], ")")
	if end < 0 {
		return names
	}
	var pending []string // names waiting for their type ("a, b *Tensor")
	for _, p := range strings.Split(rest[open+1:open+end], ",") {
		f := strings.Fields(p)
		switch len(f) {
		case 1:
			pending = append(pending, f[0])
		case 2:
			pending = append(pending, f[0])
			if f[1] == "*Tensor" || f[1] == "*Scalar" || f[1] == "[]*Tensor" || f[1] == "[]*Scalar" {
				names = append(names, pending...)
			}
			pending = nil
		}
	}
	return names
}

// editGoFiles rewrites the Go files of dir, tests aside, with edit, which
// returns a file's new text and how many edits it made; a file with none is
// left alone. It returns the edits of all files.
func editGoFiles(dir string, edit func(src string) (string, int)) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return 0, err
	}
	total := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return total, err
		}
		src, n := edit(string(b))
		if n == 0 {
			continue
		}
		total += n
		if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
			return total, err
		}
	}
	return total, nil
}

// panicInsteadOfExit makes every LibTorch error that gotch's ts package would
// end the process with (log.Fatal in the 2,485 generated Must* wrappers and in
// its hand-written code) a panic with a *LoraqaError value instead, which
// loraqa's torch.Catch turns back into a Go error. The error text keeps
// LibTorch's message and drops gotch's Go stack dump.
func panicInsteadOfExit(tsDir string) error {
	total, err := editGoFiles(tsDir, func(src string) (string, int) {
		n := strings.Count(src, "log.Fatal(") + strings.Count(src, "log.Fatalf(")
		if n == 0 {
			return src, 0
		}
		src = strings.ReplaceAll(src, "log.Fatalf(", "loraqaFailf(")
		src = strings.ReplaceAll(src, "log.Fatal(", "loraqaFail(")
		if !regexp.MustCompile(`\blog\.`).MatchString(src) { // "log" is now unused
			src = regexp.MustCompile(`(?m)^\s*"log"\n`).ReplaceAllString(src, "")
		}
		return src, n
	})
	if err != nil {
		return err
	}
	if total < 2485 {
		return fmt.Errorf("%s: expected gotch %s's log.Fatal calls (found %d)", tsDir, gotchVersion, total)
	}
	errGo := filepath.Join(tsDir, "error.go")
	b, err := os.ReadFile(errGo)
	if err != nil {
		return err
	}
	const withTrace = "return fmt.Errorf(\"Libtorch API Error: %v\\n%v\\n\", errStr, trace)"
	if !strings.Contains(string(b), withTrace) {
		return fmt.Errorf("%s: TorchErr not as expected in gotch %s", errGo, gotchVersion)
	}
	src := strings.Replace(string(b), withTrace, "_ = trace\n\t\treturn fmt.Errorf(\"Libtorch API Error: %v\", errStr)", 1)
	src = strings.Replace(src, "trace := string(debug.Stack())", "trace := debug.Stack // loraqa: no Go stack in error texts", 1)
	if err := os.WriteFile(errGo, []byte(src), 0o644); err != nil {
		return err
	}
	const fail = `package ts

// Generated by loraqa's tools/setup.

import (
	"errors"
	"fmt"
)

// LoraqaError is the panic value of a gotch call whose LibTorch operation
// failed (gotch itself would call log.Fatal and end the process).
type LoraqaError struct{ Err error }

func (e *LoraqaError) Error() string { return e.Err.Error() }
func (e *LoraqaError) Unwrap() error { return e.Err }

func loraqaFail(v ...any) {
	if len(v) == 1 {
		if err, ok := v[0].(error); ok {
			panic(&LoraqaError{Err: err})
		}
	}
	panic(&LoraqaError{Err: errors.New(fmt.Sprint(v...))})
}

func loraqaFailf(format string, v ...any) { panic(&LoraqaError{Err: fmt.Errorf(format, v...)}) }
`
	return os.WriteFile(filepath.Join(tsDir, "loraqa_error.go"), []byte(fail), 0o644)
}

// cCallRe matches a statement of gotch's libtch that calls into LibTorch:
// "C.at..(", alone, returned or assigned.
var cCallRe = regexp.MustCompile(`^(\s*)(return |[\w, ]+:?= )?C\.at[a-z]*_\w*\(`)

// countCalls makes every call of libtch into LibTorch count itself
// (LoraqaCalls), so that loraqa can report LibTorch calls per training step.
func countCalls(libtch string) error {
	total, err := editGoFiles(libtch, func(src string) (string, int) {
		lines := strings.Split(src, "\n")
		out := make([]string, 0, len(lines)+1000)
		n := 0
		for _, line := range lines {
			if m := cCallRe.FindStringSubmatch(line); m != nil {
				out = append(out, m[1]+"loraqaCount()")
				n++
			}
			out = append(out, line)
		}
		return strings.Join(out, "\n"), n
	})
	if err != nil {
		return err
	}
	if total < 2000 {
		return fmt.Errorf("%s: expected gotch %s's C calls (found %d)", libtch, gotchVersion, total)
	}
	return nil
}

// shimSource is where loraqa's own C++ lives in the repository; setup
// compiles it as the package github.com/sugarme/gotch/lqshim of the gotch
// copy, with the cgo flags of the LibTorch found (so that a change to it
// recompiles that small package, not gotch's 18,000 generated wrappers).
const shimSource = "torch/csrc"

// writeShim (re)writes the shim package from shimSource; files that did not
// change are left alone.
func writeShim(gotchDir string, lt LibTorch) error {
	dir := filepath.Join(gotchDir, "lqshim")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c, cxx, ld := cgoFlags(lt)
	var b strings.Builder
	fmt.Fprintf(&b, "// Package lqshim is loraqa's C++ shim (%s in the loraqa repository), compiled\n// against LibTorch %s. Generated by loraqa's tools/setup.\npackage lqshim\n\n", shimSource, lt.Version)
	fmt.Fprintf(&b, "// #cgo CFLAGS: %s\n", strings.Join(c, " "))
	fmt.Fprintf(&b, "// #cgo CXXFLAGS: %s\n", strings.Join(cxx, " "))
	fmt.Fprintf(&b, "// #cgo LDFLAGS: %s\n", strings.Join(ld, " "))
	b.WriteString("import \"C\"\n")
	want := map[string][]byte{"lib.go": []byte(b.String())}
	srcs, err := os.ReadDir(shimSource)
	if err != nil {
		return fmt.Errorf("the shim's sources: %w (run setup from the repository root)", err)
	}
	for _, e := range srcs {
		if ext := filepath.Ext(e.Name()); ext != ".cpp" && ext != ".h" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(shimSource, e.Name()))
		if err != nil {
			return err
		}
		want[e.Name()] = data
	}
	have, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range have {
		if _, ok := want[e.Name()]; !ok {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for name, data := range want {
		p := filepath.Join(dir, name)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
